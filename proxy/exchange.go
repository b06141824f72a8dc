package proxy

import "github.com/jackc/pgx/v5/pgconn"

// exchange is one round trip between the session and its backend: the
// bytes going out (bout) and, in order, the answers still expected
// (queue). The relay (relay.go) checks answers off the queue as they come;
// entries the proxy answers itself (synth) are emitted when they reach the
// head, so the client sees exactly Postgres's order.
type exchange struct {
	queue        []expect        // answers still expected from the backend, in order
	qstore       []expect        // queue storage, reused once the queue drains
	bout         []byte          // bytes going to the backend
	lastTag      []byte          // last CommandComplete tag seen (for COMMIT/ROLLBACK)
	lastSQL      string          // statement of the current round trip (slow-query log); may alias the read buffer
	failed       bool            // an ErrorResponse was relayed in the current round trip
	completed    bool            // a statement of the client's Query completed in the current round trip
	copyBroken   bool            // a foreign message ended the client's COPY (see copyIn)
	backendFatal *pgconn.PgError // FATAL the backend sent before closing (reported by backendLost)
}

func (x *exchange) pop() { x.queue = x.queue[1:] }

// push queues an expectation, reusing the queue's storage once it drained.
func (x *exchange) push(e expect) {
	if len(x.queue) == 0 && cap(x.qstore) > 0 {
		x.queue = x.qstore[:0]
	}
	x.queue = append(x.queue, e)
	if cap(x.queue) > cap(x.qstore) {
		x.qstore = x.queue[:0]
	}
}

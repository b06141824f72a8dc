package proxy

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgrouter/pgrouter/pgwire"
)

// Reading a backend. Every path reads its backends through binding.next
// (one message) or binding.readUntilReady (every message up to the next
// ReadyForQuery): the single-shard relay, the multi-shard executions
// (scatter, split INSERT, broadcast, multi-shard batches and transactions,
// COPY split, 2PC) and the proxy's own statements. So timeouts.query holds
// on every path, and a failed read always becomes the same client error.

// next reads b's next message. With timeouts.query set (b.timeout) the read
// waits at most that long: the deadline is refreshed before every read that
// may block, so it bounds a backend's silence, not a long result. Setting a
// deadline is a syscall: a buffered message or an unset timeout costs none.
func (b *binding) next() (typ byte, body []byte, err error) {
	if b.timeout > 0 && b.rd.buffered() == 0 {
		b.conn.NetConn.SetReadDeadline(time.Now().Add(b.timeout))
	}
	return b.rd.next()
}

// sendAwait writes a request to b whose answer is read next: on a plain
// TCP connection the wait for the answer starts with the write (sockio's
// WriteAwait spares the read that would find nothing yet), under
// timeouts.query like any read of b.
func (b *binding) sendAwait(msg []byte) error {
	c := b.conn.NetConn
	a, ok := c.(interface{ WriteAwait([]byte) error })
	if !ok {
		return writeAll(c, msg)
	}
	if b.timeout > 0 {
		c.SetReadDeadline(time.Now().Add(b.timeout))
	}
	return a.WriteAwait(msg)
}

// disarm clears the read deadline once every answer arrived, before the
// backend is idle again (pool checks and the idle watch read it too).
func (b *binding) disarm() {
	if b.timeout > 0 {
		b.conn.NetConn.SetReadDeadline(time.Time{})
	}
}

// readUntilReady reads b's answers up to the next ReadyForQuery: every
// message goes to on (nil: discard), ReadyForQuery's status to
// b.txStatus. perr is the first ErrorResponse. A lost connection (or a
// passed deadline) marks b broken (TxFailed: it is discarded, not reused)
// and comes back as lost, the client's error (see lostError).
func (b *binding) readUntilReady(on func(typ byte, body []byte)) (perr, lost *pgconn.PgError) {
	for {
		typ, body, err := b.next()
		if err != nil {
			return perr, b.lost(err)
		}
		switch typ {
		case pgwire.ReadyForQuery:
			b.txStatus = body[0]
			b.disarm()
			return perr, nil
		case pgwire.ErrorResponse:
			if perr == nil {
				perr = pgwire.DecodeError(body)
			}
		}
		if on != nil {
			on(typ, body)
		}
	}
}

// lost marks b broken after a failed read and returns the client's error.
func (b *binding) lost(err error) *pgconn.PgError {
	b.txStatus = pgwire.TxFailed
	return lostError(b.node.Name, err, b.timeout)
}

// lostError is the client's error for a backend read that failed with
// err: 57014 when it was timeouts.query (timeout) that passed, else 08006.
// An error already made by lostError passes through unchanged.
func lostError(node string, err error, timeout time.Duration) *pgconn.PgError {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && (pe.Code == pgwire.QueryCanceled || pe.Code == pgwire.ConnectionFailure) {
		return pe
	}
	var ne net.Error
	if timeout > 0 && errors.As(err, &ne) && ne.Timeout() {
		return pgwire.Error(pgwire.QueryCanceled, fmt.Sprintf("canceling statement due to query timeout: backend %s did not answer for %s", node, timeout),
			"pgrouter closed the backend connection (timeouts.query); the statement may or may not have been executed")
	}
	return pgwire.Error(pgwire.ConnectionFailure, fmt.Sprintf("connection to backend %s lost: %v", node, err), "")
}

package proxy

import (
	"time"

	"github.com/pgrouter/pgrouter/pgwire"
)

// idleWatch relays what a pinned backend sends while its client is idle —
// NOTIFY payloads for LISTEN, notices, parameter changes — at once, as
// Postgres itself would, instead of with the client's next statement.
// Only pinned sessions keep a backend between requests, so only they
// need it; it runs while the session goroutine waits for the client.
type idleWatch struct {
	b    *binding
	done chan struct{}
}

func (ss *session) startIdleWatch() {
	if ss.pinned == "" || ss.be == nil || len(ss.queue) > 0 || ss.openBatch {
		return
	}
	w := &idleWatch{b: ss.be, done: make(chan struct{})}
	ss.watch = w
	go func() {
		defer close(w.done)
		var frame []byte
		for {
			typ, body, err := w.b.rd.next()
			if err != nil {
				return // deadline from stopIdleWatch, or a dead backend the next request finds
			}
			switch typ {
			case pgwire.NotificationResponse, pgwire.NoticeResponse, pgwire.ParameterStatus:
				if typ == pgwire.ParameterStatus {
					ss.noteParameterStatus(body)
				}
				frame = appendFrame(frame[:0], typ, body)
				if _, err := ss.conn.Write(frame); err != nil {
					return
				}
			case pgwire.ErrorResponse:
				if pgwire.IsFatal(body) {
					ss.backendFatal = pgwire.DecodeError(body)
				}
			}
		}
	}()
}

// stopIdleWatch takes the backend back before the session uses it.
func (ss *session) stopIdleWatch() {
	w := ss.watch
	if w == nil {
		return
	}
	ss.watch = nil
	w.b.conn.NetConn.SetReadDeadline(time.Now())
	<-w.done
	w.b.conn.NetConn.SetReadDeadline(time.Time{})
}

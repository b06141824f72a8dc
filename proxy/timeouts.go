package proxy

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/pgrouter/pgrouter/pgwire"

	"github.com/jackc/pgx/v5/pgconn"
)

// Server-side timeouts (config section timeouts). Both are read deadlines
// armed only while the session waits for one peer, so a session that is
// not waiting pays nothing:
//
//   - idle_in_transaction: while the client is inside a transaction and the
//     session waits for its next message (armed lazily, see idleStart). When it passes the client gets
//     FATAL 25P03 (as from Postgres's idle_in_transaction_session_timeout)
//     and the session's cleanup rolls its backends back.
//   - query: while the session waits for a backend's answer; refreshed
//     before every socket read, so it bounds silence, not a long result.
//     When it passes the backend is discarded and the client gets 57014.

// The idle-in-transaction deadline is armed lazily: setting a socket
// deadline costs about a microsecond, too much for every message of every
// transaction. A deadline stays set across messages and transactions; when
// it fires early (the client was busy, or is outside a transaction now) the
// read is resumed with the deadline moved to where it belongs. So a session
// re-arms about once per timeout period, not once per message.

// idleStart notes that the session now waits for the client and arms the
// deadline when none is set and the client is inside a transaction.
func (ss *session) idleStart() {
	d := ss.st.cfg.Timeouts.IdleInTransaction.D()
	if d <= 0 || ss.txStatus == pgwire.TxIdle {
		return
	}
	ss.idleSince = time.Now()
	if !ss.idleArmed.IsZero() {
		return
	}
	ss.idleArmed = ss.idleSince.Add(d)
	ss.conn.SetReadDeadline(ss.idleArmed)
	if ss.closing.Load() && ss.running.Load() == nil || ss.fenced.Load() != nil { // keep shutdown's or the fence's wake-up
		ss.conn.SetReadDeadline(time.Now())
	}
}

type idleVerdict uint8

const (
	idleOther    idleVerdict = iota // not this timeout: the caller handles the error
	idleSpurious                    // an early deadline, re-armed: read again
	idleExpired                     // the client was idle in a transaction too long: it was told, end the session
)

// idleTimeout classifies a client read error when the idle deadline may
// have caused it.
func (ss *session) idleTimeout(err error) idleVerdict {
	if ss.idleArmed.IsZero() || !errors.Is(err, os.ErrDeadlineExceeded) {
		return idleOther
	}
	if ss.closing.Load() && ss.running.Load() == nil || ss.fenced.Load() != nil {
		return idleOther // shutdown woke a client that holds no backend, or the fence woke it
	}
	d := ss.st.cfg.Timeouts.IdleInTransaction.D()
	if ss.txStatus == pgwire.TxIdle || time.Since(ss.idleSince) < d {
		ss.idleArmed = time.Time{}
		if ss.txStatus != pgwire.TxIdle {
			ss.idleArmed = ss.idleSince.Add(d)
		}
		ss.conn.SetReadDeadline(ss.idleArmed)
		return idleSpurious
	}
	ss.srv.Metrics.errors(pgwire.IdleInTransactionTimeout)
	ss.srv.log.Info("client idle in transaction too long; disconnected", "client_id", ss.pid, "user", ss.user.Name,
		"db", ss.dbName, "timeout", d.String())
	ss.writeClient(pgwire.AppendError(nil, &pgconn.PgError{Severity: "FATAL", Code: pgwire.IdleInTransactionTimeout,
		Message: "terminating connection due to idle-in-transaction timeout",
		Detail:  fmt.Sprintf("The client was idle inside a transaction for more than %s (pgrouter timeouts.idle_in_transaction); the transaction is rolled back.", d)}))
	return idleExpired
}

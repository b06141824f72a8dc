package proxy

import (
	"bytes"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgrouter/pgrouter/pgwire"
)

// Session state that lives in a backend and is not replayed cannot follow
// a client from one pooled backend to the next. Most of it pins the client
// (temp tables, LISTEN, …: router Plan.Pin), but the value currval and
// lastval remember comes from nextval, which also runs implicitly (column
// DEFAULTs): pinning every client that inserts would end pooling. So a
// currval/lastval that finds no nextval on its backend gets Postgres's
// error with a hint that says why and what works instead.

const poolingHint = "pgrouter pools backends per transaction (pool.mode: transaction): currval and lastval see only " +
	"the nextval calls of the same transaction. Use the value nextval or INSERT … RETURNING returns, or call nextval " +
	"and currval in one transaction (pool.mode: session keeps one backend per client)."

// poolingError reports whether an ErrorResponse body is one transaction
// pooling causes for a client that is not pinned (matched by routine:
// messages may be translated).
func (ss *session) poolingError(body []byte) bool {
	if ss.pinned != "" || ss.st.cfg.Pool.Mode == "session" || !bytes.Contains(body, []byte("\x00C55000\x00")) {
		return false
	}
	return bytes.Contains(body, []byte("\x00Rcurrval_oid\x00")) || bytes.Contains(body, []byte("\x00Rlastval\x00"))
}

// appendPoolingHint relays the error with poolingHint.
func appendPoolingHint(dst, body []byte) []byte {
	var e pgproto3.ErrorResponse
	if e.Decode(body) != nil || e.Hint != "" {
		return appendFrame(dst, pgwire.ErrorResponse, body)
	}
	e.Hint = poolingHint
	return appendMsg(dst, &e)
}

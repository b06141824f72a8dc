package proxy

import (
	"fmt"
	"math"
	"strconv"

	"github.com/pgrouter/pgrouter/pgwire"

	"github.com/jackc/pgx/v5/pgproto3"
)

// A multi-shard SELECT executed with a row limit stays open in Postgres
// until its transaction ends: after Sync inside a transaction block (JDBC's
// fetch size, a cursor-like portal), up to the client's Sync in an
// implicit transaction (an Execute with a limit answered on Flush). The
// merge has already read every shard to the end by then (the shards'
// backends serve the transaction's next statements, or went back to their
// pools), so the rows past the limit are kept here with the portal's
// RowDescription, and later Executes, Describes and Closes of that portal
// are answered from them.

// keptPortalMax bounds the rows one kept portal holds in the proxy's memory.
const keptPortalMax = 256 << 20

// keptPortal is a suspended multi-shard portal: its rows not yet fetched.
// A portal that ran to completion without a result (done: the portal of a
// BEGIN answered locally, deferTxControl) is kept too, as Postgres keeps it
// until the transaction ends: Describe gives NoData, Execute 55000.
type keptPortal struct {
	desc    []byte       // RowDescription body; nil: NoData
	rows    [][]byte     // DataRow bodies, in the merge's order
	notices []keptNotice // raised while pgrouter ran it ahead of the client (replicadrain.go)
	done    bool         // a utility portal already run: it cannot run again
}

// keptNotice is a NoticeResponse of a kept portal, sent when the client's
// Execute reaches its place among the rows.
type keptNotice struct {
	at   int    // rows of the portal before it (of those still kept)
	body []byte // NoticeResponse body
}

// portalsEndAtSync reports whether a portal opened now ends at the
// client's next Sync (or Query): outside a transaction block, where the
// batch is Postgres's implicit transaction.
func (ss *session) portalsEndAtSync() bool {
	if ss.span != nil {
		return ss.span.implicit
	}
	return ss.pendingBegin == "" && ss.txStatus != pgwire.TxActive
}

// endImplicitPortals closes the kept portals of an implicit transaction
// once it ends (the client's Sync or Query), as Postgres does.
func (t *txState) endImplicitPortals() {
	if t.keptToSync {
		t.kept, t.keptToSync = nil, false
	}
}

// keptBatch answers a batch made only of Execute, Describe and Close of
// kept portals (and Sync / Flush). Any other batch goes to the backend,
// its messages about kept portals answered in their place (translateKept).
func (ss *session) keptBatch(sync bool) (done bool, err error) {
	if len(ss.kept) == 0 || ss.openBatch && ss.be != nil {
		return false, nil // (the backend's open batch needs this Sync or Flush)
	}
	if ss.txStatus == pgwire.TxIdle && ss.pendingBegin == "" && !ss.keptToSync { // ended without readyForQuery (a lost backend)
		ss.kept = nil
		return false, nil
	}
	b := &ss.batch
	only := true
	for i, m := range b.msgs {
		switch m.typ {
		case pgwire.Sync, pgwire.Flush:
		case pgwire.Execute, pgwire.Describe, pgwire.Close:
			if !ss.keptTarget(m.typ, b.body(i)) {
				only = false
			}
		default:
			only = false
		}
	}
	if !only || ss.txStatus == pgwire.TxFailed {
		return false, nil
	}
	for i, m := range b.msgs {
		if ss.out, err = ss.answerKept(ss.out, m.typ, b.body(i)); err != nil {
			return true, ss.refuseBatch(err, sync) // Postgres skips the rest of the batch up to Sync
		}
	}
	switch {
	case sync && ss.span != nil: // the batch over shards ends (commits) here
		return true, ss.endSpan()
	case sync:
		ss.out = pgwire.AppendReady(ss.out, ss.txStatus)
	}
	return true, ss.flushClient()
}

// keptTarget reports whether an Execute, Describe or Close names a kept portal.
func (t *txState) keptTarget(typ byte, body []byte) bool {
	if typ != pgwire.Execute {
		if len(body) == 0 || body[0] != pgwire.ObjectPortal {
			return false
		}
		body = body[1:]
	}
	name, _, err := cstring(body)
	if err != nil {
		return false
	}
	_, ok := t.kept[name]
	return ok
}

// answerKept appends to dst the answer to one message of a keptBatch as
// Postgres would give it; an error is the one Postgres raises there (it
// fails the transaction). A portal Closed earlier in the same batch is
// gone, as in Postgres.
func (t *txState) answerKept(dst []byte, typ byte, body []byte) ([]byte, error) {
	switch typ {
	case pgwire.Sync, pgwire.Flush:
		return dst, nil // the caller's
	case pgwire.Describe, pgwire.Close:
		body = body[1:] // (keptTarget checked the 'P')
	}
	name, _, _ := cstring(body)
	p := t.kept[name]
	switch {
	case typ == pgwire.Close:
		delete(t.kept, name)
		return append(dst, pgwire.MsgCloseComplete...), nil
	case p == nil:
		return dst, pgwire.Error(pgwire.InvalidCursorName, fmt.Sprintf("portal %q does not exist", name), "")
	case typ == pgwire.Describe && p.desc == nil:
		return append(dst, pgwire.MsgNoData...), nil
	case typ == pgwire.Describe:
		return appendFrame(dst, pgwire.RowDescription, p.desc), nil
	case t.txStatus == pgwire.TxFailed: // checked before whether it can run
		return dst, errTxAborted
	case p.done:
		return dst, pgwire.Error(pgwire.ObjectNotInPrerequisiteState, fmt.Sprintf("portal %q cannot be run", name), "")
	}
	return p.execute(dst, body), nil
}

// execute appends the next rows of a kept portal, up to Execute's limit.
func (p *keptPortal) execute(dst []byte, body []byte) []byte {
	limit, _ := executeMaxRows(body)
	if limit <= 0 {
		limit = math.MaxInt64
	}
	dst, n := p.fetch(dst, limit, true)
	if n == limit {
		return append(dst, pgwire.PortalSuspended, 0, 0, 0, 4) // PortalSuspended, as Postgres at the limit
	}
	return appendMsg(dst, &pgproto3.CommandComplete{CommandTag: []byte("SELECT " + strconv.FormatInt(n, 10))})
}

// fetch appends at most limit of the portal's next rows (withRows false:
// skips them, as MOVE), each after the notices raised before it, and
// returns how many it took. The notices that followed the last row come
// only when the rows run out before the limit: Postgres stops running the
// portal at the limit, so those of later rows (or of its end) come with a
// later Execute.
func (p *keptPortal) fetch(dst []byte, limit int64, withRows bool) ([]byte, int64) {
	n := min(limit, int64(len(p.rows)))
	k := 0
	for i, row := range p.rows[:n] {
		for ; k < len(p.notices) && p.notices[k].at <= i; k++ {
			dst = appendFrame(dst, pgwire.NoticeResponse, p.notices[k].body)
		}
		if withRows {
			dst = appendFrame(dst, pgwire.DataRow, row)
		}
	}
	if n < limit { // its end
		for ; k < len(p.notices); k++ {
			dst = appendFrame(dst, pgwire.NoticeResponse, p.notices[k].body)
		}
	}
	p.notices = p.notices[k:]
	for i := range p.notices {
		p.notices[i].at -= int(n)
	}
	p.rows = p.rows[n:]
	return dst, n
}

// translateKept queues the answer to a Describe, Execute or Close of a
// kept portal met in a batch sent to the backend (which lacks that
// portal): in its place in the stream; an error stands there as the
// proxy's refusal, so that the backend skips to Sync with the client.
func (ss *session) translateKept(typ byte, body []byte) {
	synth, err := ss.answerKept(nil, typ, body)
	if err != nil {
		ss.refusal = pgwire.AppendError(ss.refusal[:0], toPgError(err))
		ss.appendRefusal()
		return
	}
	ss.push(expect{kind: typ, synth: synth})
}

// keepLocalPortals keeps the portals b binds for a statement answered
// locally (deferTxControl): Postgres keeps them until the transaction ends.
func (ss *session) keepLocalPortals(b *batch) {
	for i, m := range b.msgs {
		if m.typ != pgwire.Bind {
			continue
		}
		if name, _, err := cstring(b.body(i)); err == nil {
			ss.keepPortal(name, nil, nil)
			ss.kept[name].done = true
		}
	}
}

// keepPortal stores what is left of a suspended multi-shard portal.
func (t *txState) keepPortal(name string, desc []byte, rows [][]byte) {
	t.keep(name, &keptPortal{desc: desc, rows: rows})
}

func (t *txState) keep(name string, p *keptPortal) {
	if t.kept == nil {
		t.kept = make(map[string]*keptPortal)
	}
	t.kept[name] = p
}

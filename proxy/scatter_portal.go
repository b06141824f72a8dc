package proxy

import (
	"strconv"

	"github.com/jackc/pgx/v5/pgproto3"
)

// A multi-shard SELECT executed with a row limit inside a transaction
// block (JDBC's fetch size, a cursor-like portal) stays open after Sync
// in Postgres, until the transaction ends. The merge has already read
// every shard to the end by then (the shards' backends serve the
// transaction's next statements), so the rows past the limit are kept
// here with the portal's RowDescription, and later Executes, Describes
// and Closes of that portal are answered from them.

// keptPortalMax bounds the rows one kept portal holds in the proxy's memory.
const keptPortalMax = 256 << 20

// keptPortal is a suspended multi-shard portal: its rows not yet fetched.
type keptPortal struct {
	desc []byte   // RowDescription body
	rows [][]byte // DataRow bodies, in the merge's order
}

// keepsPortal reports whether a multi-shard portal suspended now must
// outlive the client's Sync: inside the client's transaction block (an
// implicit transaction closes its portals at Sync, as in Postgres).
func (ss *session) keepsPortal() bool {
	if ss.span != nil {
		return !ss.span.implicit
	}
	return ss.pendingBegin != "" || ss.txStatus == 'T'
}

// keptBatch answers a batch made only of Execute, Describe and Close of
// kept portals (and Sync / Flush). A Bind that reuses a kept portal's
// name drops the kept rows: the backend's portal of that name is the
// client's from then on.
func (ss *session) keptBatch(sync bool) (done bool, err error) {
	if len(ss.kept) == 0 {
		return false, nil
	}
	if ss.txStatus == 'I' && ss.pendingBegin == "" { // ended without readyForQuery (a lost backend)
		ss.kept = nil
		return false, nil
	}
	b := &ss.batch
	only := true
	for i, m := range b.msgs {
		switch m.typ {
		case 'S', 'H':
		case 'B':
			if dst, _, err := cstring(b.body(i)); err == nil {
				delete(ss.kept, dst)
			}
			only = false
		case 'E', 'D', 'C':
			if !ss.keptTarget(m.typ, b.body(i)) {
				only = false
			}
		default:
			only = false
		}
	}
	if !only || ss.txStatus == 'E' {
		return false, nil
	}
	for i, m := range b.msgs {
		ss.answerKept(m.typ, b.body(i))
	}
	if sync {
		ss.out = appendReady(ss.out, ss.txStatus)
	}
	return true, ss.flushClient()
}

// keptTarget reports whether an Execute, Describe or Close names a kept portal.
func (ss *session) keptTarget(typ byte, body []byte) bool {
	if typ != 'E' {
		if len(body) == 0 || body[0] != 'P' {
			return false
		}
		body = body[1:]
	}
	name, _, err := cstring(body)
	if err != nil {
		return false
	}
	_, ok := ss.kept[name]
	return ok
}

// answerKept answers one message of a keptBatch as Postgres would.
func (ss *session) answerKept(typ byte, body []byte) {
	switch typ {
	case 'E':
		name, _, _ := cstring(body)
		p := ss.kept[name]
		limit, _ := executeMaxRows(body)
		n := int64(len(p.rows))
		if limit > 0 && limit < n {
			n = limit
		}
		for _, row := range p.rows[:n] {
			ss.out = appendFrame(ss.out, 'D', row)
		}
		p.rows = p.rows[n:]
		if limit > 0 && n == limit {
			ss.out = append(ss.out, 's', 0, 0, 0, 4) // PortalSuspended, as Postgres at the limit
			return
		}
		ss.out = appendMsg(ss.out, &pgproto3.CommandComplete{CommandTag: []byte("SELECT " + strconv.FormatInt(n, 10))})
	case 'D':
		name, _, _ := cstring(body[1:])
		ss.out = appendFrame(ss.out, 'T', ss.kept[name].desc)
	case 'C':
		name, _, _ := cstring(body[1:])
		delete(ss.kept, name)
		ss.out = append(ss.out, msgCloseComplete...)
	}
}

// keepPortal stores what is left of a suspended multi-shard portal.
func (ss *session) keepPortal(name string, desc []byte, rows [][]byte) {
	if ss.kept == nil {
		ss.kept = make(map[string]*keptPortal)
	}
	ss.kept[name] = &keptPortal{desc: desc, rows: rows}
}

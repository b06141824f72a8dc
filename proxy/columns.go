package proxy

import (
	"errors"

	"github.com/pgrouter/pgrouter/pgwire"

	"github.com/pgrouter/pgrouter/router"
)

// learnColumns handles a route that failed for want of a sharded table's
// column order (an INSERT without a column list, router/columns.go): it
// reads the order from the catalog, as the client's session resolves the
// table, and reports whether to route again. Otherwise err is what the
// client gets: the router's refusal when the order could not be read.
func (ss *session) learnColumns(err error) (retry bool, out error) {
	var need *router.NeedColumnsError
	if !errors.As(err, &need) {
		return false, err
	}
	cols, ok := ss.readColumns(need.Query())
	if !ok || len(cols) == 0 {
		return false, need.Refusal()
	}
	ss.router.SetColumns(need.Table, cols)
	return true, nil
}

// readColumns runs the catalog query on the client's backend (its query
// never fails, so an open transaction stays healthy), or else on a primary
// backend taken for it alone, with the client's settings (search_path).
func (ss *session) readColumns(query string) ([]string, bool) {
	own := ss.be == nil
	if own {
		if err := ss.acquireBackend(0, true); err != nil {
			return nil, false
		}
	} else if ss.openBatch || ss.be.txStatus == pgwire.TxFailed {
		return nil, false
	}
	b := ss.be
	fail := func() ([]string, bool) {
		if own { // (the client's own backend, if lost, is reported at its next use)
			ss.discard()
		}
		return nil, false
	}
	out, pre := ss.appendPreambleFor(ss.bout[:0], b, "")
	out = appendQuery(out, query)
	ss.bout = out[:0]
	if err := writeAll(b.conn.NetConn, out); err != nil {
		return fail()
	}
	if _, lost := ss.readPreamble(b, pre); lost != nil {
		return fail()
	}
	r := readResult(b)
	if r.err != nil || own && b.txStatus != pgwire.TxIdle {
		return fail()
	}
	if own {
		ss.release()
	}
	cols := make([]string, 0, len(r.rows))
	for _, row := range r.rows {
		if len(row) == 1 {
			cols = append(cols, row[0])
		}
	}
	return cols, true
}

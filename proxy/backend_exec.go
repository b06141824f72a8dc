package proxy

import (
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"github.com/pgrouter/pgrouter/pgwire"

	"github.com/jackc/pgx/v5/pgconn"
)

// Simple queries the proxy runs on backends itself (two-phase commit,
// joining a shard, recovery), outside the client's request/answer relay.

// execResult is a backend's answer to one simple query run by the proxy.
type execResult struct {
	tag  string
	rows [][]string // text columns (NULL as "")
	err  *pgconn.PgError
}

func (r execResult) failure(shard, what string) *pgconn.PgError {
	if r.err == nil {
		return pgwire.Error(pgwire.InternalError, fmt.Sprintf("shard %s %s: unexpected answer %q", shard, what, r.tag), "")
	}
	e := pgwire.WithMessage(r.err, fmt.Sprintf("shard %s %s: %s", shard, what, r.err.Message))
	e.Severity = "ERROR" // e is a copy
	return e
}

// execAll runs sql on every backend concurrently (write all, then read
// all): one round trip in total, not one per backend.
func execAll(bs []*binding, sql string) []execResult {
	lost := sendEach(bs, func(_ int, _ *binding, dst []byte) []byte { return appendQuery(dst, sql) })
	out := make([]execResult, len(bs))
	for i, b := range bs {
		if lost != nil && lost[i] != nil {
			out[i].err = lost[i]
			continue
		}
		out[i] = readResult(b)
	}
	return out
}

func execOne(b *binding, sql string) execResult {
	return execAll([]*binding{b}, sql)[0]
}

// readResult reads one simple query's answers up to ReadyForQuery (at
// most 30 s: these are the proxy's own short commands).
func readResult(b *binding) execResult {
	var r execResult
	b.conn.NetConn.SetReadDeadline(time.Now().Add(30 * time.Second))
	defer b.conn.NetConn.SetReadDeadline(time.Time{})
	perr, lost := b.readUntilReady(func(typ byte, body []byte) {
		switch typ {
		case pgwire.CommandComplete:
			r.tag = strings.TrimRight(string(body), "\x00")
		case pgwire.DataRow:
			r.rows = append(r.rows, decodeTextRow(body))
		}
	})
	r.err = perr
	if lost != nil {
		r.err = lost
	}
	return r
}

// preamble is what the proxy sends a backend ahead of a statement of its
// own making: the client's session settings (when the backend's differ)
// and the BEGIN of the transaction the statement runs in, each a Query
// whose answers only the proxy reads (readPreamble).
type preamble struct{ sync, begin bool }

// appendPreambleFor appends b's preamble to dst: the GUC sync, then begin
// unless it is "".
func (ss *session) appendPreambleFor(dst []byte, b *binding, begin string) ([]byte, preamble) {
	var p preamble
	if q := ss.syncSQL(b.conn.Settings); q != "" {
		dst, p.sync = appendQuery(dst, q), true
	}
	if begin != "" {
		dst, p.begin = appendQuery(dst, begin), true
	}
	return dst, p
}

// readPreamble swallows the answers to b's preamble, rows of set_config
// included: none of them is the client's. A failed sync is logged and
// makes b forget its settings (all resynced next time), as on the
// single-shard path; a BEGIN that did not open a transaction is perr.
// lost reports a dead connection (see readUntilReady).
func (ss *session) readPreamble(b *binding, p preamble) (perr, lost *pgconn.PgError) {
	if p.sync {
		if perr, lost = b.readUntilReady(nil); lost != nil {
			return nil, lost
		}
		if perr != nil {
			ss.srv.log.Warn("session state sync failed", "client_id", ss.pid, "user", ss.user.Name, "db", ss.dbName, "shard", b.node.Shard, "node", b.node.Name, "err", perr.Message)
			clear(b.conn.Settings)
		}
	}
	if !p.begin {
		return nil, nil
	}
	if perr, lost = b.readUntilReady(nil); lost != nil {
		return nil, lost
	}
	if perr == nil && b.txStatus != pgwire.TxActive {
		perr = pgwire.Error(pgwire.InternalError, "BEGIN did not open a transaction", "")
	}
	if perr != nil {
		return execResult{err: perr}.failure(b.node.Shard, "could not begin"), nil
	}
	return nil, nil
}

// decodeTextRow reads a DataRow of text columns (NULL becomes "").
func decodeTextRow(body []byte) []string {
	if len(body) < 2 {
		return nil
	}
	n := int(binary.BigEndian.Uint16(body))
	body = body[2:]
	row := make([]string, 0, n)
	for i := 0; i < n && len(body) >= 4; i++ {
		l := int32(binary.BigEndian.Uint32(body))
		body = body[4:]
		if l < 0 || int(l) > len(body) {
			row = append(row, "")
			continue
		}
		row = append(row, string(body[:l]))
		body = body[l:]
	}
	return row
}

package proxy

import (
	"encoding/binary"
	"fmt"
	"strings"
	"time"

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
		return pgErr("XX000", fmt.Sprintf("shard %s %s: unexpected answer %q", shard, what, r.tag), "")
	}
	e := *r.err
	e.Severity = "ERROR"
	e.Message = fmt.Sprintf("shard %s %s: %s", shard, what, r.err.Message)
	return &e
}

// execAll runs sql on every backend concurrently (write all, then read
// all): one round trip in total, not one per backend.
func execAll(bs []*binding, sql string) []execResult {
	msg := appendQuery(nil, sql)
	out := make([]execResult, len(bs))
	sent := make([]bool, len(bs))
	for i, b := range bs {
		sent[i] = writeAll(b.conn.NetConn, msg) == nil
	}
	for i, b := range bs {
		if !sent[i] {
			b.txStatus = 'E'
			out[i].err = pgErr("08006", "connection to backend "+b.node.Name+" lost", "")
			continue
		}
		out[i] = readResult(b)
	}
	return out
}

func execOne(b *binding, sql string) execResult {
	return execAll([]*binding{b}, sql)[0]
}

// readResult reads one simple query's answers up to ReadyForQuery. A lost
// connection marks the backend broken ('E': it is discarded, not reused).
func readResult(b *binding) execResult {
	var r execResult
	b.conn.NetConn.SetReadDeadline(time.Now().Add(30 * time.Second))
	defer b.conn.NetConn.SetReadDeadline(time.Time{})
	for {
		typ, body, err := b.rd.next()
		if err != nil {
			b.txStatus = 'E'
			r.err = pgErr("08006", fmt.Sprintf("connection to backend %s lost: %v", b.node.Name, err), "")
			return r
		}
		switch typ {
		case 'C':
			r.tag = strings.TrimRight(string(body), "\x00")
		case 'D':
			r.rows = append(r.rows, decodeTextRow(body))
		case 'E':
			if r.err == nil {
				r.err = decodeError(body)
			}
		case 'Z':
			b.txStatus = body[0]
			return r
		}
	}
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

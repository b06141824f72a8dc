package proxy

import (
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgrouter/pgrouter/pgwire"
)

// The multi-shard executor. A statement that runs on several shards
// (scatter read, split INSERT, broadcast write, reference write, COPY
// split, the commands of two-phase commit) goes out in one round trip:
// sendEach writes every backend its whole request first, then the answers
// are read backend by backend, each with binding.next/readUntilReady
// (backend_read.go), so timeouts.query and a lost backend are handled the
// same way on every path. What differs per path is only what is sent
// (encode) and what is made of the answers (merge, split results, COPY).

// sendEach writes to every backend of bs what encode appends for it (its
// preamble, see appendPreambleFor, and its request) before any answer is
// read. Each backend is marked busy (TxActive) until its ReadyForQuery is
// read, so none is reused with answers pending. lost is nil when every
// write went through; else lost[i] is the error of each backend that could
// not be written to (marked broken: it is discarded, not reused).
func sendEach(bs []*binding, encode func(i int, b *binding, dst []byte) []byte) (lost []*pgconn.PgError) {
	var msg []byte
	for i, b := range bs {
		msg = encode(i, b, msg[:0])
		b.txStatus = pgwire.TxActive
		if err := writeAll(b.conn.NetConn, msg); err != nil {
			if lost == nil {
				lost = make([]*pgconn.PgError, len(bs))
			}
			lost[i] = b.lost(err)
		}
	}
	return lost
}

// firstLost is the first error of sendEach's lost (nil: none).
func firstLost(lost []*pgconn.PgError) *pgconn.PgError {
	for _, e := range lost {
		if e != nil {
			return e
		}
	}
	return nil
}

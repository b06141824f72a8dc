package reshard

import (
	"context"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgrouter/pgrouter/router/sharding"
)

// chunkRows is about how many rows of a table one copy chunk covers (by
// the table's size estimate); maxChunks bounds the chunks of one move.
const (
	chunkRows = 2000
	maxChunks = 64
)

// chunksFor picks the number of chunks of a move out of table t on c.
func chunksFor(ctx context.Context, c *pgconn.PgConn, t *table) (int, error) {
	rows, err := query(ctx, c, "SELECT reltuples::bigint::text FROM pg_class WHERE oid = $1::regclass", t.name)
	if err == nil && rows[0][0] == "-1" { // never analyzed: count
		rows, err = query(ctx, c, "SELECT count(*)::text FROM "+t.name)
	}
	if err != nil {
		return 0, fmt.Errorf("table %s: size estimate: %w", t.name, err)
	}
	var n float64
	fmt.Sscan(rows[0][0], &n)
	return int(math.Min(maxChunks, math.Max(1, math.Ceil(n/chunkRows)))), nil
}

// openSource makes sure the source has its publication and slot. A fresh
// slot exports its snapshot: the returned replication connection keeps it
// alive and snap names it ("" when the slot existed: a resumed copy
// redoes its remaining chunks from a new snapshot, which the catch-up from
// the slot's LSN brings forward to the same state, every change being an
// idempotent set or delete of a whole row).
func openSource(ctx context.Context, src *pgconn.PgConn, dialRepl func() (*pgconn.PgConn, error),
	sp *sourceProg, tables []*table) (snap string, repl *pgconn.PgConn, err error) {
	if sp.StartLSN != "" {
		return "", nil, nil
	}
	if err := dropSlot(ctx, src, sp.Slot); err != nil { // left by a run killed before it saved the LSN
		return "", nil, err
	}
	names := make([]string, len(tables))
	for i, t := range tables {
		names[i] = t.name
	}
	pub := quoteIdent(sp.Slot)
	if err := exec(ctx, src, "DROP PUBLICATION IF EXISTS "+pub+"; CREATE PUBLICATION "+pub+" FOR TABLE "+strings.Join(names, ", ")); err != nil {
		return "", nil, fmt.Errorf("creating publication %s: %w", sp.Slot, err)
	}
	repl, err = dialRepl()
	if err != nil {
		return "", nil, err
	}
	res, err := pglogrepl.CreateReplicationSlot(ctx, repl, sp.Slot, "pgoutput",
		pglogrepl.CreateReplicationSlotOptions{Mode: pglogrepl.LogicalReplication, SnapshotAction: "EXPORT_SNAPSHOT"})
	if err != nil {
		repl.Close(context.WithoutCancel(ctx))
		return "", nil, fmt.Errorf("creating replication slot %s: %w", sp.Slot, err)
	}
	sp.StartLSN = res.ConsistentPoint
	return res.SnapshotName, repl, nil
}

// dropSlot drops the slot if it exists (its walsender must have stopped).
func dropSlot(ctx context.Context, c *pgconn.PgConn, slot string) error {
	_, err := query(ctx, c, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1", slot)
	if err != nil {
		return fmt.Errorf("dropping replication slot %s: %w", slot, err)
	}
	return nil
}

// beginSnapshot opens the source transaction the chunks are read in: on
// the slot's exported snapshot when there is one.
func beginSnapshot(ctx context.Context, src *pgconn.PgConn, snap string) error {
	sql := "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY"
	if snap != "" {
		sql += "; SET TRANSACTION SNAPSHOT '" + snap + "'"
	}
	return exec(ctx, src, sql)
}

// copyChunk copies chunk i of n of move m from src (inside the snapshot
// transaction) to dst with binary COPY, in one target transaction that
// first deletes what an interrupted earlier try left of the chunk.
func copyChunk(ctx context.Context, src, dst *pgconn.PgConn, t *table, m sharding.Move, i, n int) (int64, error) {
	chunk := fmt.Sprintf("(%s) AND %s = %d", m.Where, bucketOf(m, n), i)
	if err := exec(ctx, dst, "BEGIN; DELETE FROM "+t.name+" WHERE "+chunk); err != nil {
		return 0, fmt.Errorf("target %s: %w", m.To, err)
	}
	pr, pw := io.Pipe()
	srcErr := make(chan error, 1)
	go func() {
		_, err := src.CopyTo(ctx, pw, fmt.Sprintf("COPY (SELECT %s FROM %s WHERE %s) TO STDOUT (FORMAT binary)", t.colList(), t.name, chunk))
		pw.CloseWithError(err)
		srcErr <- err
	}()
	tag, err := dst.CopyFrom(ctx, pr, fmt.Sprintf("COPY %s (%s) FROM STDIN (FORMAT binary)", t.name, t.colList()))
	pr.CloseWithError(io.ErrClosedPipe) // unblocks the reader side's writer on a target error
	if serr := <-srcErr; serr != nil {
		dst.Exec(context.WithoutCancel(ctx), "ROLLBACK").ReadAll()
		return 0, fmt.Errorf("source %s: %w", m.From, serr)
	}
	if err != nil {
		dst.Exec(context.WithoutCancel(ctx), "ROLLBACK").ReadAll()
		return 0, fmt.Errorf("target %s: %w", m.To, err)
	}
	if err := exec(ctx, dst, "COMMIT"); err != nil {
		return 0, fmt.Errorf("target %s: %w", m.To, err)
	}
	return tag.RowsAffected(), nil
}

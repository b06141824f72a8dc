package rwsplit

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestPipelinedBatchWithWrite: a pgx batch is one implicit transaction (one
// Sync); when it holds a write anywhere, even after a read, all of it runs on
// the primary, and the read after the write in the same batch sees the row.
func TestPipelinedBatchWithWrite(t *testing.T) {
	waitReplicasServing(t, env)
	tp := topoOf(env)
	ctx := testCtx(t, 30*time.Second)
	c := connect(t, env)
	id := time.Now().UnixNano()
	b := &pgx.Batch{}
	b.Queue(whoSQL)
	b.Queue("insert into ryw (id, client) values ($1, 'batch')", id)
	b.Queue(whoSQL+", (select count(*) from ryw where id = $1)", id)
	res := c.SendBatch(ctx, b)
	first, err := who(ctx, batchRow{res}, "")
	if err != nil {
		t.Fatalf("read before the write: %v", err)
	}
	if _, err := res.Exec(); err != nil {
		t.Fatalf("write after a read in one batch: %v", err)
	}
	var port int32
	var rec bool
	var n int64
	if err := res.QueryRow().Scan(&port, &rec, &n); err != nil {
		t.Fatalf("read after the write: %v", err)
	}
	if err := res.Close(); err != nil {
		t.Fatal(err)
	}
	if first.Recovery || first.Port != tp.primary || rec || int(port) != tp.primary {
		t.Errorf("batch with a write ran on %s then %s; want the primary for all", tp.name(first.Port), tp.name(int(port)))
	}
	if n != 1 {
		t.Errorf("the batch's own row not visible to its next statement (count %d)", n)
	}
}

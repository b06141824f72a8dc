package router

import (
	"encoding/binary"
	"errors"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgrouter/pgrouter/router/sharding"
)

// ShardOfKey and CopyPlan.Shard agree with the table's sharding function,
// in text and binary form, and never guess for NULL or bad keys.
func TestShardOfKeyMatchesShardingFunc(t *testing.T) {
	r := testRouter(t)
	p, _ := r.Prepare("COPY users (user_id, name) FROM STDIN")
	if p.Copy == nil {
		t.Fatal("no Plan.Copy")
	}
	tbl := p.Copy.t
	seen := map[int]bool{}
	for i := int64(-300); i < 300; i++ {
		text := []byte(strconv.FormatInt(i, 10))
		want, err := tbl.fn.Shard(sharding.Key{Int: i})
		if err != nil {
			t.Fatal(err)
		}
		seen[want] = true
		if got, err := r.ShardOfKey("users", text); err != nil || got != want {
			t.Fatalf("ShardOfKey(%d) = %d, %v; want %d", i, got, err, want)
		}
		if got, err := p.Copy.Shard(text, false); err != nil || got != want {
			t.Fatalf("Shard(text %d) = %d, %v; want %d", i, got, err, want)
		}
		b8 := binary.BigEndian.AppendUint64(nil, uint64(i))
		b4 := binary.BigEndian.AppendUint32(nil, uint32(int32(i)))
		for _, b := range [][]byte{b8, b4} {
			if got, err := p.Copy.Shard(b, true); err != nil || got != want {
				t.Fatalf("Shard(binary %d, %d bytes) = %d, %v; want %d", i, len(b), got, err, want)
			}
		}
	}
	if len(seen) != len(r.shardNames) {
		t.Fatalf("keys reached %d shards, want %d", len(seen), len(r.shardNames))
	}
	for _, bad := range [][]byte{nil, []byte("abc"), []byte("99999999999999999999")} {
		_, err := p.Copy.Shard(bad, false)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code[:2] != "22" {
			t.Errorf("Shard(%q) error = %v, want a 22xxx PgError", bad, err)
		}
	}
	if _, err := r.ShardOfKey("no_such_table", []byte("1")); err == nil {
		t.Error("ShardOfKey of an unknown table succeeded")
	}
}

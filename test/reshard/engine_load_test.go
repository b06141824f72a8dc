package reshard

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgrouter/pgrouter/router"
)

// keyedLoad runs INSERT/UPDATE/DELETE over engineKeys keys through
// pgrouter. Each worker owns the keys k with k % workers == w, so it knows
// every key's acknowledged state exactly: its reads must return it, and
// after the reshard the shards must hold it.
type keyedLoad struct {
	table   string
	keys    int // keys 1..keys
	workers int
	want    []map[int64]int64 // per worker: key → v of the present keys
	stop    atomic.Bool
	wg      sync.WaitGroup
	mu      sync.Mutex
	errs    []error
	acked   atomic.Int64
	reads   atomic.Int64
	stall   atomic.Int64 // longest acknowledged statement, ns

	// dial, when set, reconnects a worker whose connection broke (pgrouter
	// killed): the outcome of its statement in flight is then read back.
	dial       func(ctx context.Context) (*pgx.Conn, error)
	reconnects atomic.Int64
}

func newKeyedLoad(table string, keys, workers int) *keyedLoad {
	l := &keyedLoad{table: table, keys: keys, workers: workers, want: make([]map[int64]int64, workers)}
	for w := range l.want {
		l.want[w] = map[int64]int64{}
		for id := int64(1); id <= int64(keys); id++ {
			if int(id)%workers == w {
				l.want[w][id] = 0
			}
		}
	}
	return l
}

// run starts one worker per connection (len(conns) == workers).
func (l *keyedLoad) run(ctx context.Context, conns []*pgx.Conn) {
	for w, c := range conns {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			if err := l.work(ctx, w, c); err != nil {
				if l.stop.Load() && c.IsClosed() {
					return // a crash that came with the stop
				}
				l.mu.Lock()
				l.errs = append(l.errs, err)
				l.mu.Unlock()
			}
		}()
	}
}

func (l *keyedLoad) work(ctx context.Context, w int, c *pgx.Conn) error {
	rng := rand.New(rand.NewPCG(uint64(w), 7))
	want := l.want[w]
	for !l.stop.Load() {
		id := int64(rng.IntN(l.keys/l.workers))*int64(l.workers) + int64(w)
		if id == 0 {
			id = int64(l.workers)
		}
		v, present := want[id]
		start := time.Now()
		var err error
		var n int64
		switch r := rng.IntN(10); {
		case !present:
			n, err = exec1(ctx, c, "INSERT INTO "+l.table+" (id, v, pad) VALUES ($1, $2, 'ins')", id, v+1)
			want[id] = v + 1
		case r < 2:
			n, err = exec1(ctx, c, "DELETE FROM "+l.table+" WHERE id = $1", id)
			delete(want, id)
		case r < 7:
			n, err = exec1(ctx, c, "UPDATE "+l.table+" SET v = v + 1 WHERE id = $1", id)
			want[id] = v + 1
		default:
			var got int64
			err = c.QueryRow(ctx, "SELECT v FROM "+l.table+" WHERE id = $1", id).Scan(&got)
			n = 1
			if err == nil && got != v {
				return fmt.Errorf("read of key %d returned v=%d, want %d", id, got, v)
			}
			if err == nil {
				l.reads.Add(1)
				continue
			}
		}
		if err != nil && c.IsClosed() && l.dial != nil {
			if c, err = l.reconnect(ctx, id, want); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("key %d: %w", id, err)
		}
		if n != 1 {
			return fmt.Errorf("key %d: statement touched %d rows, want 1", id, n)
		}
		l.acked.Add(1)
		d := int64(time.Since(start))
		for old := l.stall.Load(); d > old && !l.stall.CompareAndSwap(old, d); old = l.stall.Load() {
		}
	}
	return nil
}

// reconnect dials until pgrouter is back, then reads key id's row in a
// transaction (on the primary) to learn whether the statement in flight
// took effect.
func (l *keyedLoad) reconnect(ctx context.Context, id int64, want map[int64]int64) (*pgx.Conn, error) {
	l.reconnects.Add(1)
	for !l.stop.Load() {
		c, err := l.dial(ctx)
		if err != nil {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		var v int64
		err = pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error { return tx.QueryRow(ctx, "SELECT v FROM "+l.table+" WHERE id = $1", id).Scan(&v) })
		switch {
		case err == nil:
			want[id] = v
		case errors.Is(err, pgx.ErrNoRows):
			delete(want, id)
		default:
			c.Close(ctx)
			return nil, fmt.Errorf("key %d: reading back after a reconnect: %w", id, err)
		}
		return c, nil
	}
	return nil, errors.New("stopped while reconnecting")
}

func exec1(ctx context.Context, c *pgx.Conn, sql string, args ...any) (int64, error) {
	tag, err := c.Exec(ctx, sql, args...)
	return tag.RowsAffected(), err
}

// halt stops the load and fails the test on any error it saw.
func (l *keyedLoad) halt(t *testing.T) {
	t.Helper()
	l.stop.Store(true)
	l.wg.Wait()
	for _, err := range l.errs {
		t.Errorf("load: %v", err)
	}
}

// routerPlaces is where r places the load's keys.
func routerPlaces(t *testing.T, r *router.Router, table string) func(int64) int {
	return func(id int64) int {
		s, err := r.ShardOfKey(table, []byte(fmt.Sprint(id)))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}

// checkPlaced checks, directly on the shards, that every key the load
// acknowledged as present is on exactly the shard shardOf names with its
// value, and that no other row of the table exists anywhere.
func checkPlaced(ctx context.Context, t *testing.T, ee *engineEnv, l *keyedLoad, shardOf func(int64) int) {
	t.Helper()
	var shards []map[int64]int64
	for i := range ee.Cluster.Shards {
		shards = append(shards, ee.shardRows(ctx, t, i, l.table))
	}
	bad := 0
	report := func(err error) {
		if bad++; bad <= 10 {
			t.Error(err)
		}
	}
	for _, want := range l.want {
		for id, v := range want {
			s := shardOf(id)
			got, ok := shards[s][id]
			if !ok || got != v {
				report(fmt.Errorf("key %d: on shard%d v=%d present=%v, want v=%d", id, s, got, ok, v))
			}
			for i := range shards {
				if i != s {
					if _, dup := shards[i][id]; dup {
						report(fmt.Errorf("key %d also on shard%d (belongs to shard%d)", id, i, s))
					}
				}
			}
		}
	}
	total := 0
	for _, s := range shards {
		for id := range s {
			if id <= int64(l.keys) {
				total++
			}
		}
	}
	present := 0
	for _, want := range l.want {
		present += len(want)
	}
	if total != present {
		report(fmt.Errorf("the shards hold %d rows of %s, the load acknowledged %d present keys", total, l.table, present))
	}
	if bad > 0 {
		t.Errorf("%d placement errors", bad)
	}
}

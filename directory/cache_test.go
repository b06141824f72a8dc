package directory

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgrouter/pgrouter/config"
	"github.com/pgrouter/pgrouter/router/sharding"
)

// fakeTable is a Table whose lookup reads a map (pure cache mechanics; the
// real lookup is tested against Postgres in postgres_test.go).
type fakeTable struct {
	*Table
	mu      sync.Mutex
	m       map[string]string
	calls   atomic.Int64
	started chan struct{} // one send per lookup start when non-nil
	release chan struct{} // lookups wait for it when non-nil
}

func newFake(t testing.TB, size int, ttl time.Duration) *fakeTable {
	t.Helper()
	ct := &config.ShardedTable{Table: "customers", Column: "cid", Type: "int", Function: "directory"}
	f := &fakeTable{Table: newTable(ct, sharding.TypeInt, []string{"s0", "s1", "s2"}, size, ttl), m: map[string]string{}}
	f.timeout = 5 * time.Second
	f.lookup = func(ctx context.Context, _ *Table, key string, _ sharding.Key) (string, error) {
		f.calls.Add(1)
		if f.started != nil {
			f.started <- struct{}{}
		}
		if f.release != nil {
			<-f.release
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		name, ok := f.m[key]
		if !ok {
			return "", f.errUnknownKey()
		}
		return name, nil
	}
	return f
}

func (f *fakeTable) set(key, shard string) {
	f.mu.Lock()
	f.m[key] = shard
	f.mu.Unlock()
}

func (f *fakeTable) shard(t *testing.T, id int64) int {
	t.Helper()
	s, err := f.Shard(context.Background(), sharding.Key{Int: id})
	if err != nil {
		t.Fatalf("key %d: %v", id, err)
	}
	return s
}

func TestCacheHitsAfterOneLookup(t *testing.T) {
	f := newFake(t, 100, time.Hour)
	f.set("7", "s2")
	for range 5 {
		if s := f.shard(t, 7); s != 2 {
			t.Fatalf("shard %d", s)
		}
	}
	st := f.stats()
	if f.calls.Load() != 1 || st.Lookups != 1 || st.Hits != 4 || st.Misses != 1 || st.Entries != 1 {
		t.Fatalf("calls %d stats %+v", f.calls.Load(), st)
	}
}

func TestCacheTTLExpires(t *testing.T) {
	f := newFake(t, 100, 50*time.Millisecond)
	f.set("1", "s0")
	f.shard(t, 1)
	f.set("1", "s1")
	if s := f.shard(t, 1); s != 0 {
		t.Fatalf("within the TTL the cached mapping must be used, got %d", s)
	}
	deadline := time.Now().Add(5 * time.Second)
	for f.shard(t, 1) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("cached mapping never expired")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if f.calls.Load() < 2 {
		t.Fatalf("%d lookups: expiry must cause a new one", f.calls.Load())
	}
}

func TestCacheSizeIsBounded(t *testing.T) {
	f := newFake(t, 3, time.Hour)
	for i := range 10 {
		f.set(strconv.Itoa(i), "s1")
		f.shard(t, int64(i))
	}
	if n := f.stats().Entries; n != 3 {
		t.Fatalf("%d entries cached, want the bound 3", n)
	}
	before := f.calls.Load()
	f.shard(t, 9) // most recent: still cached
	if f.calls.Load() != before {
		t.Fatal("most recent key was evicted")
	}
	f.shard(t, 0) // least recent: evicted long ago
	if f.calls.Load() != before+1 {
		t.Fatal("evicted key answered without a lookup")
	}
}

func TestZeroCacheSizeAlwaysLooksUp(t *testing.T) {
	f := newFake(t, 0, time.Hour)
	f.set("1", "s0")
	for range 3 {
		f.shard(t, 1)
	}
	if f.calls.Load() != 3 {
		t.Fatalf("%d lookups with cache_size 0, want 3", f.calls.Load())
	}
}

// N concurrent misses of one key run one lookup; every caller gets its answer.
func TestConcurrentMissesAreCoalesced(t *testing.T) {
	f := newFake(t, 100, time.Hour)
	f.set("42", "s2")
	f.started, f.release = make(chan struct{}, 100), make(chan struct{})
	const n = 50
	var wg sync.WaitGroup
	results := make(chan int, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := f.Shard(context.Background(), sharding.Key{Int: 42})
			if err != nil {
				t.Error(err)
			}
			results <- s
		}()
	}
	<-f.started // the one lookup is running and holds every caller
	// Wait until all callers are in: misses count callers that reached the flight.
	deadline := time.Now().Add(10 * time.Second)
	for f.misses.Load() < n && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	close(f.release)
	wg.Wait()
	close(results)
	for s := range results {
		if s != 2 {
			t.Fatalf("caller got shard %d", s)
		}
	}
	if c := f.calls.Load(); c != 1 || f.misses.Load() != n {
		t.Fatalf("%d lookups for %d concurrent misses (misses %d), want 1", c, n, f.misses.Load())
	}
}

func TestUnknownKeysAreNotCached(t *testing.T) {
	f := newFake(t, 100, time.Hour)
	_, err := f.Shard(context.Background(), sharding.Key{Int: 5})
	if err == nil || err.Error() == "" {
		t.Fatal("unknown key accepted")
	}
	f.set("5", "s1")
	if s := f.shard(t, 5); s != 1 {
		t.Fatalf("mapping added after a miss: shard %d", s)
	}
	if st := f.stats(); st.LookupErrors != 1 || st.Lookups != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestUnknownShardNameIsAnError(t *testing.T) {
	f := newFake(t, 100, time.Hour)
	f.set("5", "s9")
	_, err := f.Shard(context.Background(), sharding.Key{Int: 5})
	if pgCode(err) != "22023" || !strings.Contains(err.Error(), `unknown shard "s9"`) {
		t.Fatalf("got %v", err)
	}
}

func TestInvalidateOneKeyOrAll(t *testing.T) {
	f := newFake(t, 100, time.Hour)
	for i := range 4 {
		f.set(strconv.Itoa(i), "s0")
		f.shard(t, int64(i))
	}
	for i := range 4 {
		f.set(strconv.Itoa(i), "s1")
	}
	key := " +2" // any text the key type accepts
	if n, err := f.Invalidate(&key); err != nil || n != 1 {
		t.Fatalf("invalidate one: %d %v", n, err)
	}
	if f.shard(t, 2) != 1 || f.shard(t, 1) != 0 {
		t.Fatal("only key 2 must see the new mapping")
	}
	bad := "x"
	if _, err := f.Invalidate(&bad); pgCode(err) != "22P02" {
		t.Fatalf("bad key text: %v", err)
	}
	if n, _ := f.Invalidate(nil); n != 4 {
		t.Fatalf("invalidate all dropped %d, want 4", n)
	}
	for i := range 4 {
		if f.shard(t, int64(i)) != 1 {
			t.Fatalf("key %d kept its old mapping", i)
		}
	}
}

// A lookup that started before an invalidation must not put its (possibly
// stale) answer into the cache.
func TestInvalidationDuringALookupKeepsTheCacheClean(t *testing.T) {
	f := newFake(t, 100, time.Hour)
	f.set("3", "s0")
	f.started, f.release = make(chan struct{}, 10), make(chan struct{})
	done := make(chan int)
	go func() { done <- f.shard(t, 3) }()
	<-f.started
	f.Invalidate(nil)
	close(f.release)
	if s := <-done; s != 0 {
		t.Fatalf("shard %d", s)
	}
	if n := f.stats().Entries; n != 0 {
		t.Fatalf("a lookup older than the invalidation filled the cache (%d entries)", n)
	}
}

func TestCallerContextEndsTheWaitNotTheLookup(t *testing.T) {
	f := newFake(t, 100, time.Hour)
	f.set("8", "s1")
	f.started, f.release = make(chan struct{}, 10), make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error)
	go func() {
		_, err := f.Shard(ctx, sharding.Key{Int: 8})
		errc <- err
	}()
	<-f.started
	cancel()
	if err := <-errc; pgCode(err) != "57014" {
		t.Fatalf("canceled caller: %v", err)
	}
	close(f.release)
	deadline := time.Now().Add(5 * time.Second)
	for f.stats().Entries != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the shared lookup did not finish and cache its answer")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if s := f.shard(t, 8); s != 1 || f.calls.Load() != 1 {
		t.Fatalf("shard %d after %d lookups", s, f.calls.Load())
	}
}

func asPg(err error) *pgconn.PgError {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe
	}
	return nil
}

func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

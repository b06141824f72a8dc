package faults

import (
	"context"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// bigResult is about 250 MB of rows: far more than any socket buffer.
const bigResult = "select repeat('x', 1000) from generate_series(1, 250000) /* slowreader */"

// TestSlowReader: a client asks for a 250 MB result and then reads nothing
// for 3 s, then 8 MiB slowly, then hangs up. Meanwhile other clients are
// served; pgrouter's heap grows by a bounded amount (it does not buffer the
// result the reader does not take); after the hang-up the backend stops
// sending and the heap returns near its baseline.
func TestSlowReader(t *testing.T) {
	base := liveHeap()
	r := loginTrust(t, env.Proxy.Addr)
	r.SetDeadline(time.Now().Add(60 * time.Second))
	r.send(t, query(bigResult))
	if _, err := io.CopyN(io.Discard, r.r, 64<<10); err != nil {
		t.Fatalf("first bytes of the result: %v", err)
	}

	others := servedMeanwhile(t, 3*time.Second)
	stalled := int64(liveHeap()) - int64(base)
	for i := 0; i < 128; i++ { // 8 MiB in 64 KiB steps, 10 ms apart
		if _, err := io.CopyN(io.Discard, r.r, 64<<10); err != nil {
			t.Fatalf("slow read: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	slow := int64(liveHeap()) - int64(base)
	t.Logf("slow reader: %d other statements served while it stalled; proxy heap +%d KiB stalled, +%d KiB reading slowly",
		others, stalled>>10, slow>>10)
	if max(stalled, slow) > 32*mib {
		t.Errorf("proxy heap grew by %d MiB for one slow reader, want < 32 MiB", max(stalled, slow)/mib)
	}

	if n := runningBig(t); n != 1 {
		t.Fatalf("%d backends run the big query while its client reads slowly, want 1", n)
	}
	r.Close()
	gone := time.Now()
	for n := runningBig(t); n != 0; n = runningBig(t) {
		if time.Since(gone) > 30*time.Second {
			t.Fatalf("%d backends still run the big query 30s after its client hung up", n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	after := int64(liveHeap()) - int64(base)
	t.Logf("backend stopped %v after the hang-up; proxy heap then +%d KiB", time.Since(gone).Round(time.Millisecond), after>>10)
	if after > 8*mib {
		t.Errorf("proxy heap +%d MiB after the slow reader left, want < 8 MiB", after/mib)
	}
	assertServing(t)
}

// servedMeanwhile runs select 1 from 4 clients for d and fails the test if
// any statement fails or takes over 10 s; it returns how many were served.
func servedMeanwhile(t *testing.T, d time.Duration) int {
	t.Helper()
	var mu sync.Mutex
	served := 0
	var wg sync.WaitGroup
	end := time.Now().Add(d)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), d+10*time.Second)
			defer cancel()
			c, err := pgx.Connect(ctx, env.AppDSN())
			if err != nil {
				t.Errorf("connect while a client stalls: %v", err)
				return
			}
			defer c.Close(ctx)
			for time.Now().Before(end) {
				var n int
				if err := c.QueryRow(ctx, "select 1").Scan(&n); err != nil {
					t.Errorf("select 1 while a client stalls: %v", err)
					return
				}
				mu.Lock()
				served++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return served
}

// runningBig counts backends running bigResult on the primary.
func runningBig(t *testing.T) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var n int
	err := env.Cluster.Shards[0].Primary.QueryRow(ctx,
		"select count(*) from pg_stat_activity where state = 'active' and query like '%/* slowreader */%' and pid <> pg_backend_pid()").Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

//go:build !race

// The race detector changes allocation behaviour (and sync.Pool drops items on
// purpose under it), so allocation counts are only checked without -race.

package pool

import (
	"net"
	"testing"
	"time"
)

func TestHotPathDoesNotAllocate(t *testing.T) {
	ctx := testCtx(t)
	p := newTestPool(t, testConfig("allocs"))
	p.Release(mustAcquire(t, ctx, p))
	allocs := testing.AllocsPerRun(1000, func() {
		c, err := p.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		p.Release(c)
	})
	if allocs != 0 {
		t.Fatalf("Acquire+Release allocates %.1f times per call", allocs)
	}
}

func TestHealthCheckDoesNotAllocate(t *testing.T) {
	ctx := testCtx(t)
	cfg := testConfig("allocs-ping")
	cfg.HealthCheckIdle = time.Nanosecond
	p := newTestPool(t, cfg)
	p.Release(mustAcquire(t, ctx, p))
	allocs := testing.AllocsPerRun(200, func() {
		c, err := p.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		p.Release(c)
	})
	if allocs != 0 {
		t.Fatalf("Acquire with ping + Release allocates %.1f times per call", allocs)
	}
}

// Backend sockets go through sockio (raw-syscall reads and writes): a plain
// *net.TCPConn here would mean the hot path lost that.
func TestBackendSocketIsRawIO(t *testing.T) {
	ctx := testCtx(t)
	p := newTestPool(t, testConfig("sockio"))
	c := mustAcquire(t, ctx, p)
	defer p.Release(c)
	if _, plain := c.NetConn.(*net.TCPConn); plain {
		t.Fatalf("backend NetConn is a plain %T, want sockio's wrapper", c.NetConn)
	}
}

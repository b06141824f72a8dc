package pool

import (
	"testing"
	"time"
)

// BenchmarkAcquireRelease measures the hot path against a real backend: an
// idle conn is always available, so this is lock + pop + push.
func BenchmarkAcquireRelease(b *testing.B) {
	ctx := testCtx(b)
	p := newTestPool(b, testConfig("bench"))
	p.Release(mustAcquire(b, ctx, p))
	b.ReportAllocs()
	for b.Loop() {
		c, err := p.Acquire(ctx)
		if err != nil {
			b.Fatal(err)
		}
		p.Release(c)
	}
}

// BenchmarkAcquireReleaseContended has more goroutines than conns, so most
// acquires queue and are handed a conn directly by a Release.
func BenchmarkAcquireReleaseContended(b *testing.B) {
	ctx := testCtx(b)
	cfg := testConfig("bench-contended")
	cfg.Size = 2
	p := newTestPool(b, cfg)
	b.SetParallelism(4)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c, err := p.Acquire(ctx)
			if err != nil {
				b.Error(err)
				return
			}
			p.Release(c)
		}
	})
	b.ReportMetric(float64(p.Stats().WaitCount)/float64(b.N), "waits/op")
}

// BenchmarkAcquirePingRelease pings before every reuse (HealthCheckIdle tiny):
// one round trip to Postgres per acquire.
func BenchmarkAcquirePingRelease(b *testing.B) {
	ctx := testCtx(b)
	cfg := testConfig("bench-ping")
	cfg.HealthCheckIdle = time.Nanosecond
	p := newTestPool(b, cfg)
	p.Release(mustAcquire(b, ctx, p))
	b.ReportAllocs()
	for b.Loop() {
		c, err := p.Acquire(ctx)
		if err != nil {
			b.Fatal(err)
		}
		p.Release(c)
	}
}

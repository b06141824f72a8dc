package directory

import (
	"context"
	"testing"
	"time"

	"github.com/pgrouter/pgrouter/router/sharding"
)

// BenchmarkCacheHit is the cost a directory key adds to routing when its
// mapping is cached (the common case).
func BenchmarkCacheHit(b *testing.B) {
	f := newFake(b, 1000, time.Hour)
	f.set("42", "s1")
	ctx := context.Background()
	f.Shard(ctx, sharding.Key{Int: 42})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.Shard(ctx, sharding.Key{Int: 42}); err != nil {
			b.Fatal(err)
		}
	}
}

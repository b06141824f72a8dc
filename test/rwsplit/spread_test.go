package rwsplit

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestReadsSpreadOverReplicas: round_robin spreads the autocommit reads of a
// client that never wrote evenly over both replicas; the primary serves none.
func TestReadsSpreadOverReplicas(t *testing.T) {
	waitReplicasServing(t, env)
	tp := topoOf(env)
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeSimpleProtocol} {
		t.Run(mode.String(), func(t *testing.T) {
			ctx := testCtx(t, time.Minute)
			c := connectMode(t, env, mode)
			counts := map[int]int{}
			const reads = 200
			for range reads {
				s := mustWho(t, ctx, c, whoSQL)
				if s.Port == tp.primary || !s.Recovery {
					t.Errorf("read served by the primary (port %d, in recovery %v) while both replicas are healthy", s.Port, s.Recovery)
				}
				counts[s.Port]++
			}
			t.Logf("%d reads: %s", reads, tp.summary(counts))
			for _, r := range []int{tp.r1, tp.r2} {
				if n := counts[r]; n < reads/2*8/10 || n > reads/2*12/10 {
					t.Errorf("%s served %d of %d reads; want %d±20%%", tp.name(r), n, reads, reads/2)
				}
			}
		})
	}
}

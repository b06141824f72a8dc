package faults

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgrouter/pgrouter/config"
	"github.com/pgrouter/pgrouter/test/testenv"
)

// queryTimeout is timeouts.query of the second pgrouter of
// TestPrimaryFaultsUnderWrites; connectTimeout its pool.connect_timeout
// (a statement that needs a new backend waits for the dial, which
// timeouts.query does not cover).
const queryTimeout, connectTimeout = time.Second, 2 * time.Second

// queryTimeoutDSN starts one more pgrouter on e's config with
// timeouts.query d and returns the app DSN through it.
func queryTimeoutDSN(t *testing.T, e *testenv.Env, d time.Duration) string {
	t.Helper()
	cfg, err := config.Load(e.Path)
	if err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = t.TempDir()
	cfg.Timeouts.Query = config.Duration(d)
	cfg.Pool.ConnectTimeout = config.Duration(connectTimeout)
	inst := testenv.StartInstance(t, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	return fmt.Sprintf("postgres://app:app@%s/app?sslmode=disable", inst.Addr)
}

// checkQueryTimeout: lq's shard0 writes that met the frozen primary failed
// instead of waiting for SIGCONT: 57014 for a statement on a pooled
// backend, a connect error after connect_timeout (or 57P03 once the breaker
// opened) for one that needed a new backend. Every such write sent early
// enough to fail before SIGCONT did, and at least one got 57014.
func checkQueryTimeout(t *testing.T, lq *load, frozen, contAt time.Time) {
	t.Helper()
	codes := map[string]int{}
	mustEndBy := contAt.Add(-connectTimeout - time.Second) // sent before this: must end before SIGCONT
	for i, w := range lq.writers[0] {
		for _, r := range w.overlapping(frozen, contAt) {
			end := r.at.Add(r.dur)
			var pe *pgconn.PgError
			switch {
			case errors.As(r.err, &pe):
				codes[pe.Code]++
			case r.err != nil:
				codes["not a PgError"]++
			default:
				codes["ok"]++
			}
			if r.at.Before(mustEndBy) && !end.Before(contAt) {
				t.Errorf("timeouts.query writer %d: a write sent %v after the freeze waited %v, until SIGCONT: %v",
					i, r.at.Sub(frozen).Round(time.Millisecond), r.dur.Round(time.Millisecond), r.err)
			}
		}
	}
	t.Logf("timeouts.query %v, connect_timeout %v: writes that met the frozen primary ended with %v", queryTimeout, connectTimeout, codes)
	if codes["57014"] == 0 {
		t.Errorf("timeouts.query: no write to the frozen primary got 57014: %v", codes)
	}
}

// overlapping are the writes in flight at some time in [from, to).
func (w *kvWriter) overlapping(from, to time.Time) []kvWrite {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []kvWrite
	for _, r := range w.writes {
		if r.at.Before(to) && r.at.Add(r.dur).After(from) {
			out = append(out, r)
		}
	}
	return out
}

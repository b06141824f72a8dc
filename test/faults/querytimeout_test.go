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

// checkQueryTimeout: the first write of each shard0 writer of lq sent
// after the primary was frozen failed before SIGCONT instead of waiting
// for the primary: 57014 when it went to a pooled backend, a connect error
// (after connect_timeout) or 57P03 (breaker open) when it needed a new one;
// at least one got 57014.
func checkQueryTimeout(t *testing.T, lq *load, frozen, contAt time.Time) {
	t.Helper()
	timedOut := 0
	defer func() {
		if timedOut == 0 {
			t.Errorf("timeouts.query: no write to the frozen primary got 57014")
		}
	}()
	for i, w := range lq.writers[0] {
		r, ok := w.firstSince(frozen)
		if !ok {
			t.Errorf("timeouts.query writer %d: no write sent while the primary was stopped", i)
			continue
		}
		var pe *pgconn.PgError
		end := r.at.Add(r.dur)
		t.Logf("timeouts.query %v: writer %d's first write to the frozen primary ended after %v: %v",
			queryTimeout, i, r.dur.Round(time.Millisecond), r.err)
		if errors.As(r.err, &pe) && pe.Code == "57014" {
			timedOut++
		} else if r.err == nil {
			t.Errorf("timeouts.query writer %d: write to the frozen primary succeeded", i)
		}
		if !end.Before(contAt) {
			t.Errorf("timeouts.query writer %d: write to the frozen primary ended %v after SIGCONT, want before it (timeout %v)",
				i, end.Sub(contAt), queryTimeout)
		}
	}
}

// firstSince is the first write sent at or after at.
func (w *kvWriter) firstSince(at time.Time) (kvWrite, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, r := range w.writes {
		if !r.at.Before(at) {
			return r, true
		}
	}
	return kvWrite{}, false
}

//go:build soak

package soak

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// After the clients leave, goroutines and fds must come back to the
// baseline within these margins (the idle backends close after
// pool.idle_timeout, 5 s here).
const (
	goroutineMargin = 10
	fdMargin        = 5
	settleWithin    = 90 * time.Second
)

// waitSettled samples every 2 s until goroutines and fds are back near
// base, or settleWithin passed; it returns the last sample.
func waitSettled(t *testing.T, base sample, take func() sample) sample {
	t.Helper()
	deadline := time.Now().Add(settleWithin)
	for {
		s := take()
		if s.goroutines <= base.goroutines+goroutineMargin && s.fds <= base.fds+fdMargin {
			return s
		}
		if time.Now().After(deadline) {
			return s
		}
		time.Sleep(2 * time.Second)
	}
}

// checkFlat asserts the figures: goroutines and fds back at the baseline
// after the clients left; under load, RSS and goroutines do not keep
// growing from the first sample to the last; RSS after the load gave back
// at least half of what the load took (or is within 64 MiB of the baseline).
func checkFlat(t *testing.T, base, after sample, load []sample) {
	t.Helper()
	if after.goroutines > base.goroutines+goroutineMargin {
		t.Errorf("goroutines %d %v after the clients left, baseline %d (+%d allowed)", after.goroutines, settleWithin, base.goroutines, goroutineMargin)
	}
	if after.fds > base.fds+fdMargin {
		t.Errorf("open fds %d %v after the clients left, baseline %d (+%d allowed)", after.fds, settleWithin, base.fds, fdMargin)
	}
	if len(load) < 2 {
		t.Errorf("only %d samples under load: run for at least 30s", len(load))
		return
	}
	first, last := load[0], load[len(load)-1]
	peak := first.rssKiB
	for _, s := range load {
		peak = max(peak, s.rssKiB)
	}
	if last.rssKiB > first.rssKiB*5/4+32<<10 {
		t.Errorf("RSS grew under steady load: %d KiB at %v, %d KiB at %v", first.rssKiB, first.at, last.rssKiB, last.at)
	}
	if last.goroutines > first.goroutines*21/20+50 {
		t.Errorf("goroutines grew under steady load: %d at %v, %d at %v", first.goroutines, first.at, last.goroutines, last.at)
	}
	if kept := after.rssKiB - base.rssKiB; kept > 64<<10 && kept > (peak-base.rssKiB)/2 {
		t.Errorf("RSS %d KiB after the clients left: baseline %d KiB, peak %d KiB", after.rssKiB, base.rssKiB, peak)
	}
}

// printTable prints every sample, so a run's log is its report.
func printTable(t *testing.T, table []sample) {
	var b strings.Builder
	fmt.Fprintf(&b, "\n%-9s %7s %8s %10s %7s %8s %10s %7s\n", "phase", "at", "clients", "goroutines", "fds", "rss_MiB", "statements", "errors")
	for _, s := range table {
		fmt.Fprintf(&b, "%-9s %7v %8d %10d %7d %8.1f %10d %7d\n", s.phase, s.at, s.clients, s.goroutines, s.fds, float64(s.rssKiB)/1024, s.queries, s.errors)
	}
	t.Log(b.String())
}

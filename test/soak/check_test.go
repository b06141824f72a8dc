//go:build soak

package soak

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// After the clients leave, goroutines, fds, the live heap and RSS must come
// back to the baseline within these margins (the idle backends close after
// pool.idle_timeout, 5 s here; each sample's forced GC lets the runtime
// return freed pages).
const (
	goroutineMargin = 10
	fdMargin        = 5
	heapMarginKiB   = 4 << 10
	rssMarginKiB    = 32 << 10
	settleWithin    = 90 * time.Second
	// The Go runtime never frees a goroutine's descriptor (runtime.allgs
	// keeps every g ever created, ~0.5 KiB each, for reuse): the live heap
	// after a run keeps that much per goroutine of the peak. A heap profile
	// shows it as runtime.mallocgc with no pgrouter frame.
	gDescriptorBytes = 600
)

// heapAllowKiB is how far above base the live heap may stay once peak
// goroutines have existed.
func heapAllowKiB(peakGoroutines int) int64 {
	return heapMarginKiB + int64(peakGoroutines)*gDescriptorBytes>>10
}

func settled(base, s sample, peakGoroutines int) bool {
	return s.goroutines <= base.goroutines+goroutineMargin && s.fds <= base.fds+fdMargin &&
		s.heapKiB <= base.heapKiB+heapAllowKiB(peakGoroutines) && s.rssKiB <= base.rssKiB+rssMarginKiB
}

// waitSettled samples every 2 s until every figure is back near base, or
// settleWithin passed; it returns the last sample.
func waitSettled(t *testing.T, base sample, peakGoroutines int, take func() sample) sample {
	t.Helper()
	deadline := time.Now().Add(settleWithin)
	for {
		s := take()
		if settled(base, s, peakGoroutines) || time.Now().After(deadline) {
			return s
		}
		time.Sleep(2 * time.Second)
	}
}

// checkFlat asserts the figures: goroutines, fds, live heap and RSS back at
// the baseline after the clients left; under load, RSS, live heap and
// goroutines do not keep growing from the first sample to the last.
func checkFlat(t *testing.T, base, after sample, load []sample, peakGoroutines int) {
	t.Helper()
	if after.goroutines > base.goroutines+goroutineMargin {
		t.Errorf("goroutines %d %v after the clients left, baseline %d (+%d allowed)", after.goroutines, settleWithin, base.goroutines, goroutineMargin)
	}
	if after.fds > base.fds+fdMargin {
		t.Errorf("open fds %d %v after the clients left, baseline %d (+%d allowed)", after.fds, settleWithin, base.fds, fdMargin)
	}
	if allow := heapAllowKiB(peakGoroutines); after.heapKiB > base.heapKiB+allow {
		t.Errorf("live heap %d KiB after the clients left, baseline %d KiB (+%d KiB allowed after %d goroutines)",
			after.heapKiB, base.heapKiB, allow, peakGoroutines)
	}
	if after.rssKiB > base.rssKiB+rssMarginKiB {
		t.Errorf("RSS %d KiB after the clients left, baseline %d KiB (+%d allowed)", after.rssKiB, base.rssKiB, rssMarginKiB)
	}
	if len(load) < 2 {
		t.Errorf("only %d samples under load: run for at least 30s", len(load))
		return
	}
	first, last := load[0], load[len(load)-1]
	if last.rssKiB > first.rssKiB*5/4+32<<10 {
		t.Errorf("RSS grew under steady load: %d KiB at %v, %d KiB at %v", first.rssKiB, first.at, last.rssKiB, last.at)
	}
	if last.goroutines > first.goroutines*21/20+50 {
		t.Errorf("goroutines grew under steady load: %d at %v, %d at %v", first.goroutines, first.at, last.goroutines, last.at)
	}
	if last.heapKiB > first.heapKiB*5/4+16<<10 {
		t.Errorf("live heap grew under steady load: %d KiB at %v, %d KiB at %v", first.heapKiB, first.at, last.heapKiB, last.at)
	}
}

// printTable prints every sample, so a run's log is its report.
func printTable(t *testing.T, table []sample) {
	var b strings.Builder
	fmt.Fprintf(&b, "\n%-9s %7s %8s %10s %7s %8s %9s %10s %7s\n", "phase", "at", "clients", "goroutines", "fds", "rss_MiB", "heap_MiB", "statements", "errors")
	for _, s := range table {
		fmt.Fprintf(&b, "%-9s %7v %8d %10d %7d %8.1f %9.1f %10d %7d\n", s.phase, s.at, s.clients, s.goroutines, s.fds,
			float64(s.rssKiB)/1024, float64(s.heapKiB)/1024, s.queries, s.errors)
	}
	t.Log(b.String())
}

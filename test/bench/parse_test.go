package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A real pgbench 15 summary, as parseSummary sees it.
const pgbenchOut = `pgbench (15.18 (Debian 15.18-0+deb12u1))
transaction type: <builtin: select only>
scaling factor: 10
query mode: simple
number of clients: 500
number of threads: 2
maximum number of tries: 1
duration: 8 s
number of transactions actually processed: 44948
number of failed transactions: 3 (0.007%)
latency average = 78.914 ms
initial connection time = 1688.703 ms
tps = 6336.007732 (without initial connection time)
`

func TestParseSummary(t *testing.T) {
	var r Result
	parseSummary(pgbenchOut, &r)
	if r.Tx != 44948 || r.Failed != 3 || r.TPS != 6336.007732 {
		t.Fatalf("parsed tx=%d failed=%d tps=%v", r.Tx, r.Failed, r.TPS)
	}
	if r.Connect != 1688703*time.Microsecond {
		t.Fatalf("connect = %v", r.Connect)
	}
}

func TestReadLatenciesSkipsFailedAndMergesThreads(t *testing.T) {
	dir := t.TempDir()
	// client_id transaction_no time script_no time_epoch time_us
	files := map[string]string{
		"tx.123":   "0 0 300 0 1700000000 1\n0 1 100 0 1700000000 2\n0 2 failed 0 1700000000 3\n",
		"tx.123.1": "1 0 200 0 1700000000 4\n1 1 400 0 1700000000 5\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	lat, err := readLatencies(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(lat); got != 4 {
		t.Fatalf("got %d latencies %v, want 4 (the failed one left out)", got, lat)
	}
	if p50 := percentile(lat, 0.5); p50 != 200*time.Microsecond {
		t.Errorf("p50 = %v, want 200µs", p50)
	}
	if p99 := percentile(lat, 0.99); p99 != 400*time.Microsecond {
		t.Errorf("p99 = %v, want 400µs", p99)
	}
}

func TestPercentileNearestRank(t *testing.T) {
	lat := make([]int64, 100)
	for i := range lat {
		lat[i] = int64(i + 1)
	}
	if got := percentile(lat, 0.99); got != 99*time.Microsecond {
		t.Errorf("p99 of 1..100 = %v, want 99µs", got)
	}
	if got := percentile(lat[:1], 0.5); got != time.Microsecond {
		t.Errorf("p50 of one = %v", got)
	}
}

func TestCPUTicksOfSelfGrowsWithWork(t *testing.T) {
	pid := os.Getpid()
	before, err := cpuTicks(pid)
	if err != nil {
		t.Fatal(err)
	}
	// Burn CPU until a tick is accounted; the cap only guards against a
	// /proc reader that never moves.
	deadline := time.Now().Add(10 * time.Second)
	after, x := before, 0
	for after == before && time.Now().Before(deadline) {
		for i := 0; i < 1_000_000; i++ {
			x += i
		}
		if after, err = cpuTicks(pid); err != nil {
			t.Fatal(err)
		}
	}
	if after <= before {
		t.Fatalf("ticks did not grow in 10 s of busy work: %d → %d (x=%d)", before, after, x)
	}
}

func TestFirstErrorPrefersErrorLines(t *testing.T) {
	stderr := "pgbench: client 3 aborted in command 1 (SQL) of script 0; ERROR:  boom\nsome trailer\n"
	if got := firstError(stderr, nil); !strings.Contains(got, "boom") {
		t.Errorf("firstError = %q", got)
	}
	if got := firstError("", nil); got != "no transactions completed" {
		t.Errorf("firstError(empty) = %q", got)
	}
}

func TestScenarioArgs(t *testing.T) {
	s := Scenario{Builtin: "select-only", Mode: "prepared", Clients: 1}
	got := strings.Join(s.pgbenchArgs(3*time.Second, "/w"), " ")
	if got != "-n -T 3 -c 1 -j 1 -M prepared -b select-only" {
		t.Errorf("args = %q", got)
	}
	many := Scenario{Script: "kv_tx.sql", Mode: "simple", Clients: 500}
	got = strings.Join(many.pgbenchArgs(3*time.Second, "/w"), " ")
	if got != "-n -T 12 -c 500 -j 2 -M simple -f /w/kv_tx.sql" {
		t.Errorf("args = %q", got)
	}
}

func TestMedianByTPS(t *testing.T) {
	rs := []Result{{Target: "a", TPS: 300}, {Target: "b", TPS: 100}, {Target: "c", TPS: 200}}
	m := medianByTPS(rs)
	if m.Target != "c" || m.Runs != 3 {
		t.Errorf("median = %+v", m)
	}
	if one := medianByTPS(rs[:1]); one.Target != "a" || one.Runs != 1 {
		t.Errorf("median of one = %+v", one)
	}
}

// A pgrouter /metrics excerpt: 100 waits, 98 under 50 µs, 2 in (0.2 ms, 0.8 ms].
const waitMetrics = `# TYPE pgrouter_pool_wait_seconds histogram
pgrouter_pool_wait_seconds_bucket{le="5e-05"} 98
pgrouter_pool_wait_seconds_bucket{le="0.0002"} 98
pgrouter_pool_wait_seconds_bucket{le="0.0008"} 100
pgrouter_pool_wait_seconds_bucket{le="+Inf"} 100
pgrouter_pool_wait_seconds_sum 0.001
pgrouter_pool_wait_seconds_count 100
`

func TestWaitQuantileInterpolatesLikePrometheus(t *testing.T) {
	h, err := parseWait(strings.NewReader(waitMetrics))
	if err != nil {
		t.Fatal(err)
	}
	if h.total() != 100 {
		t.Fatalf("total = %v", h.total())
	}
	// rank 99 is the first of the two observations in (0.2, 0.8] ms: halfway.
	if got := h.quantile(0.99); got != 500*time.Microsecond {
		t.Fatalf("p99 = %v, want 500µs", got)
	}
	if got := h.quantile(0.5); got < 25*time.Microsecond || got > 26*time.Microsecond { // 50/98 of 50 µs
		t.Fatalf("p50 = %v", got)
	}
	before := waitHistogram{bounds: h.bounds, counts: []float64{98, 98, 98, 98}}
	if d := h.since(before); d.total() != 2 || d.quantile(0.5) <= 200*time.Microsecond {
		t.Fatalf("since: total %v p50 %v", d.total(), d.quantile(0.5))
	}
}

package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Result is one pgbench run against one target.
type Result struct {
	Target   string
	TPS      float64
	Tx       int64         // transactions processed
	Failed   int64         // failed transactions as pgbench counts them
	P50, P99 time.Duration // from the per-transaction log
	CPUPerTx float64       // µs of proxy CPU per transaction; <0 when not measured
	Connect  time.Duration // pgbench's "initial connection time", spent inside -T
	Duration time.Duration // the -T of this run
	Runs     int           // how many runs this median was picked from
	Err      string        // pgbench's first error line, if any
	// From pgrouter's pgrouter_pool_wait_seconds over the run (Waits 0:
	// not measured): how many backend acquisitions, and their p99 wait.
	Waits   float64
	WaitP99 time.Duration
}

var (
	reTx     = regexp.MustCompile(`number of transactions actually processed: (\d+)`)
	reFailed = regexp.MustCompile(`number of failed transactions: (\d+)`)
	reTPS    = regexp.MustCompile(`tps = ([0-9.]+)`)
	reConn   = regexp.MustCompile(`initial connection time = ([0-9.]+) ms`)
)

// runPgbench runs one time-bounded pgbench of scenario s against t, with a
// per-transaction log in a fresh directory under workdir.
func runPgbench(ctx context.Context, workdir string, t *Target, s Scenario, dur time.Duration) Result {
	res := Result{Target: t.Name, CPUPerTx: -1, Duration: s.duration(dur)}
	logDir, err := os.MkdirTemp(workdir, "pgbench-")
	if err != nil {
		res.Err = err.Error()
		return res
	}
	defer os.RemoveAll(logDir)
	args := append(s.pgbenchArgs(dur, workdir),
		"--log", "--log-prefix="+filepath.Join(logDir, "tx"),
		"-h", t.Host, "-p", strconv.Itoa(t.Port), "-U", t.User, t.DB)
	// pgbench's own timeout is -T; this bound only catches a hung proxy.
	runCtx, cancel := context.WithTimeout(ctx, s.duration(dur)+2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(runCtx, "pgbench", args...)
	cmd.Env = append(os.Environ(), "PGPASSWORD="+t.Password, "PGSSLMODE=disable")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr

	waitBefore, waitErr := scrapeTarget(ctx, t)
	before, cpuErr := procTicks(t)
	runErr := cmd.Run()
	after, cpuErr2 := procTicks(t)
	if waitAfter, err := scrapeTarget(ctx, t); err == nil && waitErr == nil && t.MetricsURL != "" {
		w := waitAfter.since(waitBefore)
		res.Waits, res.WaitP99 = w.total(), w.quantile(0.99)
	}

	parseSummary(stdout.String(), &res)
	if runErr != nil || res.Tx == 0 {
		res.Err = firstError(stderr.String(), runErr)
		if res.Tx == 0 && res.Connect > 0 {
			res.Err += fmt.Sprintf(" (connecting took %s of the run)", res.Connect.Round(time.Millisecond))
		}
	}
	if res.Tx == 0 && os.Getenv("BENCH_DEBUG") != "" {
		fmt.Fprintf(os.Stderr, "\npgbench %s\nstdout:\n%s\nstderr:\n%s\n", strings.Join(args, " "), stdout.String(), stderr.String())
	}
	lat, err := readLatencies(logDir)
	if err != nil && res.Err == "" {
		res.Err = err.Error()
	}
	if len(lat) > 0 {
		res.P50, res.P99 = percentile(lat, 0.50), percentile(lat, 0.99)
	}
	if t.Proc != nil && cpuErr == nil && cpuErr2 == nil && res.Tx > 0 {
		res.CPUPerTx = float64(after-before) * 1e6 / clockTicks / float64(res.Tx)
	}
	return res
}

// scrapeTarget reads t's pool wait histogram (nothing when t serves no metrics).
func scrapeTarget(ctx context.Context, t *Target) (waitHistogram, error) {
	if t.MetricsURL == "" {
		return waitHistogram{}, nil
	}
	return scrapeWait(ctx, t.MetricsURL)
}

// slowConnect: connecting took over a quarter of -T, so TPS covers a short
// window right after 500 cold backends started and is not comparable.
func (r *Result) slowConnect() bool { return r.Connect > r.Duration/4 }

// procTicks reads the proxy's CPU ticks; 0 for direct targets.
func procTicks(t *Target) (int64, error) {
	if t.Proc == nil {
		return 0, nil
	}
	return cpuTicks(t.Proc.pid())
}

func parseSummary(out string, res *Result) {
	if m := reTx.FindStringSubmatch(out); m != nil {
		res.Tx, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if m := reFailed.FindStringSubmatch(out); m != nil {
		res.Failed, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if m := reTPS.FindStringSubmatch(out); m != nil {
		res.TPS, _ = strconv.ParseFloat(m[1], 64)
	}
	if m := reConn.FindStringSubmatch(out); m != nil {
		msec, _ := strconv.ParseFloat(m[1], 64)
		res.Connect = time.Duration(msec * float64(time.Millisecond))
	}
}

// firstError picks the most telling line of pgbench's stderr: the first
// one that mentions an error, else the last line, else the exit status.
func firstError(stderr string, runErr error) string {
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	for _, l := range lines {
		low := strings.ToLower(l)
		if strings.Contains(low, "error") || strings.Contains(low, "fatal") || strings.Contains(low, "aborted") {
			return strings.TrimSpace(l)
		}
	}
	if last := strings.TrimSpace(lines[len(lines)-1]); last != "" {
		return last
	}
	if runErr != nil {
		return runErr.Error()
	}
	return "no transactions completed"
}

// readLatencies collects the latency (µs, third field) of every successful
// transaction in the per-thread log files pgbench wrote. Failed or skipped
// transactions carry a word instead of a number there and are left out.
func readLatencies(dir string) ([]int64, error) {
	files, err := filepath.Glob(filepath.Join(dir, "tx.*"))
	if err != nil {
		return nil, err
	}
	var lat []int64
	for _, f := range files {
		if lat, err = appendLatencies(lat, f); err != nil {
			return lat, err
		}
	}
	slices.Sort(lat)
	return lat, nil
}

func appendLatencies(lat []int64, path string) ([]int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return lat, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := bytes.Fields(sc.Bytes())
		if len(fields) < 3 {
			continue
		}
		if us, err := strconv.ParseInt(string(fields[2]), 10, 64); err == nil {
			lat = append(lat, us)
		}
	}
	if err := sc.Err(); err != nil {
		return lat, fmt.Errorf("read %s: %w", path, err)
	}
	return lat, nil
}

// percentile of sorted latencies in µs (nearest rank).
func percentile(sorted []int64, q float64) time.Duration {
	i := int(q*float64(len(sorted))+0.5) - 1
	i = max(0, min(i, len(sorted)-1))
	return time.Duration(sorted[i]) * time.Microsecond
}

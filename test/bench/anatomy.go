package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The anatomy: where each proxy's CPU goes per transaction of select-only
// simple c32, from one pgbench run per proxy with `perf stat` (syscall
// tracepoints, context switches) and `perf record` (cpu-clock samples)
// attached, and for pgrouter the Go allocator's Mallocs counter. perf's
// tracepoints count without stopping the process; strace -c (ptrace) stops
// it at every syscall and changes the very timing that decides how often
// a proxy finds its sockets empty.
const anatomyName = "anatomy select-only simple c32"

// anatomyEvents are the counters perf stat reads; the syscall names are
// the ones both proxies use on their sockets and to sleep and wake.
var anatomyEvents = []string{
	"raw_syscalls:sys_enter", "syscalls:sys_enter_read", "syscalls:sys_enter_write",
	"syscalls:sys_enter_recvfrom", "syscalls:sys_enter_sendto", "syscalls:sys_enter_epoll_wait",
	"syscalls:sys_enter_epoll_pwait", "syscalls:sys_enter_futex", "syscalls:sys_enter_nanosleep",
	"context-switches",
}

// Anatomy is one proxy's per-transaction breakdown.
type Anatomy struct {
	Target   string
	Tx       int64
	TPS      float64
	CPUPerTx float64
	PerTx    map[string]float64 // event → count per transaction
	Allocs   float64            // heap allocations per transaction; <0: not measured
	DSOs     []string           // perf report by shared object: kernel vs the proxy's own code
	Top      []string           // top symbols: perf's for PgBouncer, Go pprof's for pgrouter
	Err      string
}

// anatomyRuns measures both proxies over the main cluster.
func (b *bench) anatomyRuns(ctx context.Context) {
	if !strings.Contains(anatomyName, b.opts.only) || ctx.Err() != nil {
		return
	}
	if _, err := exec.LookPath("perf"); err != nil {
		b.note("no CPU anatomy: perf is not installed (apt-get install -y linux-perf)")
		return
	}
	s := Scenario{Builtin: "select-only", Mode: "simple", Clients: 32}
	targets := []*Target{b.bouncer}
	if t, err := b.routerTarget(ctx, &b.router); err == nil {
		targets = append(targets, t)
	}
	for _, t := range targets {
		b.anatomy = append(b.anatomy, b.anatomyOf(ctx, s, t))
	}
}

func (b *bench) anatomyOf(ctx context.Context, s Scenario, t *Target) Anatomy {
	a := Anatomy{Target: t.Name, Allocs: -1}
	fmt.Fprintf(os.Stderr, "bench: %-32s %-9s ", anatomyName, t.Name)
	dir, err := os.MkdirTemp(b.workdir, "perf-")
	if err != nil {
		a.Err = err.Error()
		return a
	}
	pid := strconv.Itoa(t.Proc.pid())
	statOut, recOut := filepath.Join(dir, "stat.csv"), filepath.Join(dir, "perf.data")
	stat := exec.CommandContext(ctx, "perf", "stat", "-x", ",", "-o", statOut, "-e", strings.Join(anatomyEvents, ","), "-p", pid)
	rec := exec.CommandContext(ctx, "perf", "record", "-q", "-e", "cpu-clock", "-F", "1999", "-o", recOut, "-p", pid)
	var recErr bytes.Buffer
	rec.Stderr = &recErr
	mallocs0, allocErr := mallocs(ctx, t)
	profile := make(chan []string, 1)
	if t.MetricsURL != "" {
		go func() { profile <- pprofTop(ctx, t, dir, b.opts.duration) }()
	} else {
		profile <- nil
	}
	if err := stat.Start(); err != nil {
		a.Err = "perf stat: " + err.Error()
		return a
	}
	if err := rec.Start(); err != nil {
		a.Err = "perf record: " + err.Error()
	}
	time.Sleep(300 * time.Millisecond) // perf attaches
	res := runPgbench(ctx, b.workdir, t, s, b.opts.duration)
	for _, c := range []*exec.Cmd{stat, rec} {
		if c.Process != nil {
			_ = c.Process.Signal(syscall.SIGINT)
			_ = c.Wait()
		}
	}
	mallocs1, allocErr2 := mallocs(ctx, t)
	a.Tx, a.TPS, a.CPUPerTx = res.Tx, res.TPS, res.CPUPerTx
	if res.Tx == 0 {
		a.Err = "pgbench: " + res.Err
		fmt.Fprintln(os.Stderr, a.Err)
		return a
	}
	if allocErr == nil && allocErr2 == nil && mallocs0 >= 0 {
		a.Allocs = float64(mallocs1-mallocs0) / float64(res.Tx)
	}
	a.PerTx, err = readPerfStat(statOut, res.Tx)
	if err != nil {
		a.Err = err.Error()
	}
	a.DSOs, err = perfReport(ctx, recOut, "dso", 1)
	if err == nil && t.MetricsURL == "" {
		a.Top, err = perfReport(ctx, recOut, "dso,symbol", 1.5)
	}
	if err != nil && a.Err == "" {
		a.Err = err.Error() + " " + strings.TrimSpace(recErr.String())
	}
	if top := <-profile; top != nil {
		a.Top = top
	}
	fmt.Fprintf(os.Stderr, "tps %8.0f  cpu/tx %.1f  syscalls/tx %.2f  allocs/tx %.1f\n", a.TPS, a.CPUPerTx,
		a.PerTx["raw_syscalls:sys_enter"], a.Allocs)
	return a
}

// readPerfStat parses perf stat -x, output: count,unit,event,...
func readPerfStat(path string, tx int64) (map[string]float64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(line, ",")
		if len(f) < 3 || strings.HasPrefix(line, "#") {
			continue
		}
		n, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue // <not supported>, <not counted>
		}
		out[f[2]] = n / float64(tx)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("perf stat counted nothing:\n%s", b)
	}
	return out, nil
}

// perfReport is perf report's flat profile sorted by keys, the rows over
// limit % of the samples, as "12.3% [kernel.kallsyms] [k] symbol".
func perfReport(ctx context.Context, data, keys string, limit float64) ([]string, error) {
	out, err := exec.CommandContext(ctx, "perf", "report", "-i", data, "--stdio", "--no-children",
		"--sort", keys, "--percent-limit", strconv.FormatFloat(limit, 'f', -1, 64)).Output()
	if err != nil {
		return nil, fmt.Errorf("perf report: %w", err)
	}
	var rows []string
	for _, line := range strings.Split(string(out), "\n") {
		line = strings.TrimSpace(strings.TrimRight(line, " -"))
		if line != "" && !strings.HasPrefix(line, "#") && strings.Contains(line, "%") {
			rows = append(rows, strings.Join(strings.Fields(line), " "))
		}
	}
	return rows, nil
}

// pprofTop takes a Go CPU profile of pgrouter over the run (perf cannot
// name Go's symbols here) and returns go tool pprof's flat top 20.
func pprofTop(ctx context.Context, t *Target, dir string, d time.Duration) []string {
	secs := max(1, int(d.Seconds())-1)
	url := strings.TrimSuffix(t.MetricsURL, "/metrics") + fmt.Sprintf("/debug/pprof/profile?seconds=%d", secs)
	path := filepath.Join(dir, "cpu.pprof")
	if keep := os.Getenv("BENCH_KEEP_PROFILE"); keep != "" {
		path = keep // for a closer look: go tool pprof $BENCH_KEEP_PROFILE
	}
	if err := download(ctx, url, path); err != nil {
		return []string{"pprof: " + err.Error()}
	}
	out, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-nodecount=20", path).Output()
	if err != nil {
		return []string{"go tool pprof: " + err.Error()}
	}
	var rows []string
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) >= 6 && strings.HasSuffix(f[1], "%") {
			rows = append(rows, fmt.Sprintf("%s flat (%s cumulative) %s", f[1], f[4], strings.Join(f[5:], " ")))
		}
	}
	return rows
}

func download(ctx context.Context, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	return os.WriteFile(path, body, 0o644)
}

var reMallocs = regexp.MustCompile(`# Mallocs = (\d+)`)

// mallocs reads the Go runtime's cumulative heap allocation count from
// pgrouter's /debug/pprof (metrics.pprof); -1 for targets without it.
func mallocs(ctx context.Context, t *Target) (int64, error) {
	if t.MetricsURL == "" {
		return -1, nil
	}
	url := strings.TrimSuffix(t.MetricsURL, "/metrics") + "/debug/pprof/allocs?debug=1"
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return -1, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return -1, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return -1, err
	}
	m := reMallocs.FindSubmatch(body)
	if m == nil {
		return -1, fmt.Errorf("no Mallocs in %s (is metrics.pprof on?)", url)
	}
	return strconv.ParseInt(string(m[1]), 10, 64)
}

// writeAnatomy renders both proxies side by side.
func writeAnatomy(w io.Writer, as []Anatomy) {
	if len(as) == 0 {
		return
	}
	fmt.Fprintf(w, "\n## CPU anatomy per transaction (select-only simple c32)\n\n"+
		"One pgbench run per proxy with `perf stat -e <syscall tracepoints>` and `perf record -e cpu-clock -F 1999`"+
		" attached (tracepoints count without stopping the process, unlike strace's ptrace); allocations from"+
		" the Go runtime's Mallocs counter (`/debug/pprof/allocs?debug=1`). Both proxies spend most of their CPU in"+
		" the kernel: a loopback write runs the receiver's TCP input and wakes it. What differs, and why, is in"+
		" docs/ARCHITECTURE.md (\"Where the CPU of a transaction goes\").\n\n")
	fmt.Fprintf(w, "| per transaction |")
	for _, a := range as {
		fmt.Fprintf(w, " %s |", a.Target)
	}
	fmt.Fprintf(w, "\n|---|%s\n", strings.Repeat("--:|", len(as)))
	row := func(name string, val func(Anatomy) string) {
		fmt.Fprintf(w, "| %s |", name)
		for _, a := range as {
			fmt.Fprintf(w, " %s |", val(a))
		}
		fmt.Fprintln(w)
	}
	row("TPS (with perf attached)", func(a Anatomy) string { return fmt.Sprintf("%.0f", a.TPS) })
	row("CPU µs", func(a Anatomy) string { return fmt.Sprintf("%.1f", a.CPUPerTx) })
	for _, ev := range anatomyEvents {
		label := strings.TrimPrefix(strings.TrimPrefix(ev, "syscalls:sys_enter_"), "raw_")
		if ev == "raw_syscalls:sys_enter" {
			label = "syscalls (all)"
		}
		row(label, func(a Anatomy) string {
			if v, ok := a.PerTx[ev]; ok {
				return fmt.Sprintf("%.2f", v)
			}
			return "–"
		})
	}
	row("heap allocations", func(a Anatomy) string {
		if a.Allocs < 0 {
			return "–"
		}
		return fmt.Sprintf("%.1f", a.Allocs)
	})
	for _, a := range as {
		fmt.Fprintf(w, "\n%s: samples by object (perf record, cpu-clock): %s.\n", a.Target, strings.Join(a.DSOs, "; "))
		if a.Err != "" {
			fmt.Fprintf(w, "\n- error: %s\n", cell(a.Err))
		}
		src := "perf report, symbols ≥ 1.5% of the process's samples"
		if a.Target != "pgbouncer" {
			src = "Go CPU profile over the run, `go tool pprof -top`, flat share of the profiled samples"
		}
		fmt.Fprintf(w, "\n%s, top symbols (%s):\n\n", a.Target, src)
		for _, s := range a.Top {
			fmt.Fprintf(w, "- %s\n", s)
		}
	}
}

package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// goal is one figure issue 14 asks for, as measured in this run.
type goal struct {
	what, want, got string
	met             string // "yes", "no", or "–" (informational / not measured)
}

// goalSet finds the figures of issue 14 in a run's results.
type goalSet struct {
	runs []ScenarioRun
	idle []IdleResult
	out  []goal
}

func (g *goalSet) run(name string) *ScenarioRun {
	for i := range g.runs {
		if g.runs[i].Scenario.Name() == name {
			return &g.runs[i]
		}
	}
	return nil
}

// result is target's result in the named scenario, nil when not measured.
func (g *goalSet) result(scenario, target string) *Result {
	if r := g.run(scenario); r != nil {
		if res := r.result(target); ok(res) {
			return res
		}
	}
	return nil
}

func (g *goalSet) add(what, want, got string, met bool, measured bool) {
	verdict := "no"
	switch {
	case !measured:
		verdict, got = "–", "not measured"
	case met:
		verdict = "yes"
	}
	g.out = append(g.out, goal{what, want, got, verdict})
}

func (g *goalSet) info(what, got string) { g.out = append(g.out, goal{what, "report", got, "–"}) }

// ratio adds "a/b ≥ min" (or ≤ when atMost) over TPS or CPU.
func (g *goalSet) ratio(what, want string, a, b *Result, cpuRatio bool, bound float64, atMost bool) {
	if a == nil || b == nil || (cpuRatio && (a.CPUPerTx <= 0 || b.CPUPerTx <= 0)) {
		g.add(what, want, "", false, false)
		return
	}
	r := a.TPS / b.TPS
	got := fmt.Sprintf("%.2f× (%.0f vs %.0f TPS)", r, a.TPS, b.TPS)
	if cpuRatio {
		r = a.CPUPerTx / b.CPUPerTx
		got = fmt.Sprintf("%.2f× (%.1f vs %.1f µs/tx)", r, a.CPUPerTx, b.CPUPerTx)
	}
	g.add(what, want, got, (atMost && r <= bound) || (!atMost && r >= bound), true)
}

// addedP50 compares the p50 pgrouter and PgBouncer add to direct at c1.
func (g *goalSet) addedP50(scenario string) {
	d, b, p := g.result(scenario, "direct"), g.result(scenario, "pgbouncer"), g.result(scenario, "pgrouter")
	what := scenario + ": added p50 vs direct"
	if d == nil || b == nil || p == nil {
		g.add(what, "≤ PgBouncer's", "", false, false)
		return
	}
	pa, ba := p.P50-d.P50, b.P50-d.P50
	g.add(what, fmt.Sprintf("≤ PgBouncer's (%+d µs)", ba.Microseconds()), fmt.Sprintf("%+d µs", pa.Microseconds()), pa <= ba, true)
}

func goals(runs []ScenarioRun, idle []IdleResult) []goal {
	g := &goalSet{runs: runs, idle: idle}
	const c32 = "select-only simple c32"
	g.ratio(c32+": TPS vs PgBouncer", "≥ 1.15×", g.result(c32, "pgrouter"), g.result(c32, "pgbouncer"), false, 1.15, false)
	g.ratio(c32+": CPU/tx vs PgBouncer", "≤ 0.85×", g.result(c32, "pgrouter"), g.result(c32, "pgbouncer"), true, 0.85, true)
	g.addedP50("select-only simple c1")
	g.addedP50("select-only prepared c1")
	const c500 = "select-only simple c500"
	g.ratio(c500+" (pool 20): TPS vs PgBouncer", "≥ 1.4×", g.result(c500, "pgrouter"), g.result(c500, "pgbouncer"), false, 1.4, false)
	g.ratio("routing on ("+c32+", every statement keyed): TPS vs select-only", "≥ 0.90×",
		g.result(c32, variantRouting), g.result(c32, "pgrouter"), false, 0.9, false)
	g.ratio("routing on: CPU/tx vs select-only (informational)", "report",
		g.result(c32, variantRouting), g.result(c32, "pgrouter"), true, 1e9, true)
	for _, kv := range []string{"kv_autocommit.sql simple c32", "kv_tx.sql simple c32"} {
		g.ratio(kv+": 2 shards vs one direct node", "≥ 0.80×", g.result(kv, "pgrouter"), g.result(kv, "direct"), false, 0.8, false)
	}
	for _, xs := range []string{"xs_orderby_limit.sql simple c8", "xs_orderby_limit.sql extended c8"} {
		g.ratio(xs+": 4 shards vs direct", "≥ 0.22×", g.result(xs, "pgrouter"), g.result(xs, "direct"), false, 0.22, false)
	}
	g.idleGoal()
	g.queueGoal()
	for _, v := range []string{variantProcs1, variantProcs2} {
		if r := g.result(c32, v); r != nil {
			g.info(c32+": "+v, fmt.Sprintf("%.0f TPS, %.1f CPU µs/tx", r.TPS, r.CPUPerTx))
		} else {
			g.add(c32+": "+v, "report", "", false, false)
		}
	}
	for _, mode := range floorModes {
		g.ratio(c32+": floor-"+mode+" (Go byte forwarder, no pgrouter work) CPU/tx vs PgBouncer", "report",
			g.result(c32, "floor-"+mode), g.result(c32, "pgbouncer"), true, 1e9, true)
	}
	return g.out
}

func (g *goalSet) idleGoal() {
	var p, b *IdleResult
	for i := range g.idle {
		switch r := &g.idle[i]; {
		case r.Target == "pgrouter" && r.Err == "":
			p = r
		case r.Target == "pgbouncer" && r.Err == "":
			b = r
		}
	}
	what := fmt.Sprintf("%d idle clients: proxy RSS per client", idleClients)
	if p == nil {
		g.add(what, "≤ 16 KiB", "", false, false)
		return
	}
	got := fmt.Sprintf("%.1f KiB", p.perClient())
	if b != nil {
		got += fmt.Sprintf(" (PgBouncer %.1f KiB)", b.perClient())
	}
	g.add(what, "≤ 16 KiB", got, p.perClient() <= 16, true)
}

func (g *goalSet) queueGoal() {
	const c2000 = "select-only simple c2000"
	p, b := g.result(c2000, "pgrouter"), g.result(c2000, "pgbouncer")
	what := "2,000 clients on pool 20: p99 queue wait (pgrouter metrics)"
	if p == nil || p.Waits == 0 {
		g.add(what, "reported", "", false, false)
		return
	}
	got := fmt.Sprintf("%s over %.0f acquisitions; p99 latency %s", p.WaitP99.Round(10*time.Microsecond), p.Waits, p.P99.Round(10*time.Microsecond))
	if b != nil {
		got += fmt.Sprintf("; TPS %.2f× PgBouncer", p.TPS/b.TPS)
	}
	g.add(what, "reported", got, true, true)
}

func writeGoals(w io.Writer, runs []ScenarioRun, idle []IdleResult) {
	fmt.Fprintf(w, "## Goals of issue 14 in this run\n\n| figure | goal | measured | met |\n|---|---|---|---|\n")
	missed := false
	for _, g := range goals(runs, idle) {
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", g.what, g.want, cell(g.got), g.met)
		missed = missed || (g.met == "no" && strings.HasPrefix(g.what, "select-only simple c32: "))
	}
	fmt.Fprintln(w)
	if missed {
		fmt.Fprintf(w, "The c32 goals ask pgrouter to spend less CPU per transaction than PgBouncer, whose CPU is ~85%% syscalls"+
			" that pgrouter makes as well (no more of them per transaction, see the anatomy below); the rest of pgrouter's cost is"+
			" the Go scheduler's parking, netpoll and wake-ups. Why, and what would close it: docs/ARCHITECTURE.md"+
			" (\"Where the CPU of a transaction goes\").\n\n")
	}
}

func writeIdle(w io.Writer, idle []IdleResult) {
	if len(idle) == 0 {
		return
	}
	fmt.Fprintf(w, "\n### %s\n\nA fresh proxy process each; every client logged in (md5) and ran `SELECT 1`, then stayed idle."+
		" RSS is VmRSS from /proc/PID/status 2 s after the last login.\n\n", idleName)
	fmt.Fprintf(w, "| target | clients | RSS before KiB | RSS with clients KiB | KiB per client | connecting took | error |\n|---|--:|--:|--:|--:|--:|---|\n")
	for _, r := range idle {
		fmt.Fprintf(w, "| %s | %d | %d | %d | %.1f | %s | %s |\n", r.Target, r.Clients, r.BeforeKiB, r.AtKiB, r.perClient(),
			r.Connect.Round(time.Millisecond), cell(r.Err))
	}
}

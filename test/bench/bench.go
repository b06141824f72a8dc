package main

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/pgrouter/pgrouter/topology/localpg"
)

// bench owns everything a run starts; close stops all of it.
type bench struct {
	opts      options
	routerBin string // "" when pgrouter could not be built
	root      string // the repository
	workdir   string

	main     *localpg.Cluster // one primary: direct, PgBouncer and pgrouter targets
	sharded  *localpg.Cluster // two shards, started for the first sharded scenario
	xsharded *localpg.Cluster // four shards, started for the first cross-shard scenario
	direct   *Target
	bouncer  *Target
	router   routerSlot             // pgrouter over main
	shRouter routerSlot             // pgrouter over sharded
	xsRouter routerSlot             // pgrouter over xsharded
	variants map[string]*routerSlot // variants of router, by name (variantSpec)
	floors   []*Target              // the floor forwarders (floor.go), started for the first scenario with Floors

	runs    []ScenarioRun
	idle    []IdleResult
	anatomy []Anatomy
	notes   []string
}

// routerSlot is one pgrouter process that is (re)started on demand: if it
// crashes during a scenario, the next one gets a fresh process and the
// crash goes into the notes.
type routerSlot struct {
	spec routerSpec
	t    *Target
	err  error // set once it cannot be started; the slot is then skipped
}

func (b *bench) note(format string, args ...any) {
	n := fmt.Sprintf(format, args...)
	fmt.Fprintln(os.Stderr, "bench: note:", n)
	b.notes = append(b.notes, n)
}

// setup starts the main cluster, loads it and starts both proxies.
func (b *bench) setup(ctx context.Context) error {
	dir, err := os.MkdirTemp("", "pgrouter-bench-")
	if err != nil {
		return err
	}
	b.workdir = dir
	// pgbouncer runs as postgres and must reach its files in here.
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	if err := writeScripts(dir); err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "bench: starting Postgres and loading pgbench tables")
	b.main, err = localpg.Start(ctx, localpg.Options{
		Settings:        map[string]string{"max_connections": "700"},
		NoSignalHandler: true, // main's signal context stops us; close() runs Cluster.Close
	})
	if err != nil {
		return err
	}
	primary := b.main.Shards[0].Primary
	if err := useMD5(ctx, primary, b.main.Password); err != nil {
		return fmt.Errorf("switch to md5 auth: %w", err)
	}
	if err := initMain(ctx, primary, b.main.Password, b.opts.scale); err != nil {
		return err
	}
	b.direct = directTarget(primary, benchDB, b.main.Password)
	bdir := filepath.Join(dir, "pgbouncer")
	if err := os.Mkdir(bdir, 0o755); err != nil {
		return err
	}
	b.bouncer, err = startPgBouncer(ctx, bdir, primary, benchDB, b.main.Password, b.opts.pool)
	if err != nil {
		return fmt.Errorf("pgbouncer: %w", err)
	}
	b.router.spec = routerSpec{bin: b.routerBin, dir: dir, name: "pgrouter", cluster: b.main, db: benchDB, pool: b.opts.pool,
		metrics: true, limits: idleLimits}
	if b.routerBin == "" {
		b.router.err = fmt.Errorf("not built")
	}
	return nil
}

// routerTarget returns a running pgrouter for slot, starting or restarting it.
func (b *bench) routerTarget(ctx context.Context, slot *routerSlot) (*Target, error) {
	if slot.err != nil {
		return nil, slot.err
	}
	if slot.t != nil && slot.t.Proc.alive() {
		return slot.t, nil
	}
	if slot.t != nil {
		b.note("%s exited during the run (%v); restarting it. Its last log lines:\n%s",
			slot.spec.name, slot.t.Proc.err, slot.t.Proc.logTail(15))
	}
	t, err := startPgrouter(ctx, slot.spec)
	if err != nil {
		slot.err = err
		b.note("%s could not be started, its scenarios are skipped: %v", slot.spec.name, err)
		return nil, err
	}
	slot.t = t
	return t, nil
}

// shardedRouter starts the 2-shard cluster and its pgrouter on first use.
func (b *bench) shardedRouter(ctx context.Context) (*Target, error) {
	if b.sharded == nil && b.shRouter.err == nil {
		if b.routerBin == "" {
			b.shRouter.err = fmt.Errorf("pgrouter not built")
			return nil, b.shRouter.err
		}
		fmt.Fprintln(os.Stderr, "bench: starting the 2-shard cluster and loading kv")
		c, err := localpg.Start(ctx, localpg.Options{Shards: 2, NoSignalHandler: true})
		if err == nil {
			b.sharded = c
			err = initSharded(ctx, c)
		}
		if err != nil {
			b.shRouter.err = fmt.Errorf("2-shard setup: %w", err)
			return nil, b.shRouter.err
		}
		b.shRouter.spec = routerSpec{bin: b.routerBin, dir: b.workdir, name: "pgrouter-sharded",
			cluster: c, db: benchDB, pool: b.opts.pool, dbExtras: kvDBExtras()}
	}
	return b.routerTarget(ctx, &b.shRouter)
}

// runScenario runs s against each of its targets, one after the other, in
// opts.repeat interleaved rounds (so slow drifts of the shared box hit every
// target alike), and keeps each target's run with the median TPS.
func (b *bench) runScenario(ctx context.Context, s Scenario) ScenarioRun {
	run := ScenarioRun{Scenario: s}
	byTarget := map[string][]Result{}
	var order []string
	for round := 0; round < max(1, b.opts.repeat) && ctx.Err() == nil; round++ {
		for _, t := range b.scenarioTargets(ctx, s, &run) {
			if _, seen := byTarget[t.Name]; !seen {
				order = append(order, t.Name)
			}
			byTarget[t.Name] = append(byTarget[t.Name], b.measure(ctx, s, t))
		}
	}
	for _, name := range order {
		run.Results = append(run.Results, medianByTPS(byTarget[name]))
	}
	return run
}

// scenarioTargets lists the targets s runs against, (re)starting pgrouter
// as needed; a pgrouter that cannot run is explained in run.Note.
func (b *bench) scenarioTargets(ctx context.Context, s Scenario, run *ScenarioRun) []*Target {
	var targets []*Target
	if !s.NoDirect {
		targets = append(targets, b.direct)
	}
	if s.CrossShard {
		t, err := b.crossShardRouter(ctx)
		if err != nil {
			run.Note = fmt.Sprintf("pgrouter (%d shards) not measured: %s", xsShards, cell(err.Error()))
			return targets
		}
		return append(targets, t)
	}
	if s.Sharded {
		t, err := b.shardedRouter(ctx)
		if err != nil {
			run.Note = "pgrouter (2 shards) not measured: " + cell(err.Error())
			return targets
		}
		return append(targets, t)
	}
	targets = append(targets, b.bouncer)
	if t, err := b.routerTarget(ctx, &b.router); err == nil {
		targets = append(targets, t)
	} else {
		run.Note = "pgrouter not measured: " + cell(err.Error())
	}
	for _, name := range s.Variants {
		if t, err := b.routerTarget(ctx, b.variant(name)); err == nil {
			targets = append(targets, t)
		}
	}
	for _, c := range b.opts.compare {
		if t, err := b.routerTarget(ctx, b.variant("pgrouter-"+c.name)); err == nil {
			targets = append(targets, t)
		}
	}
	if s.Floors {
		targets = append(targets, b.floorTargets(ctx)...)
	}
	return targets
}

// Variants of the main pgrouter (same cluster, same pool), each its own process.
const (
	variantRouting = "pgrouter-routing"     // pgbench_accounts declared sharded by aid: every statement is keyed
	variantProcs1  = "pgrouter-gomaxprocs1" // GOMAXPROCS=1
	variantProcs2  = "pgrouter-gomaxprocs2" // GOMAXPROCS=2
)

// slots lists every pgrouter process slot of the run, variants last.
func (b *bench) slots() []*routerSlot {
	out := []*routerSlot{&b.router, &b.shRouter, &b.xsRouter}
	names := []string{variantRouting, variantProcs1, variantProcs2}
	for _, c := range b.opts.compare {
		names = append(names, "pgrouter-"+c.name)
	}
	for _, name := range names {
		if slot := b.variants[name]; slot != nil {
			out = append(out, slot)
		}
	}
	return out
}

// variant returns the slot of the named variant of b.router, creating it.
func (b *bench) variant(name string) *routerSlot {
	if slot := b.variants[name]; slot != nil {
		return slot
	}
	spec := b.router.spec
	spec.name, spec.variant = name, true
	switch name {
	case variantRouting:
		// One shard, so the rows are where pgbench put them; the router
		// still plans every statement as keyed: plan cache, key extraction, hash.
		spec.dbExtras = "    sharded_tables:\n      - {table: pgbench_accounts, column: aid, type: int, function: hash}"
	case variantProcs1:
		spec.env = []string{"GOMAXPROCS=1"}
	case variantProcs2:
		spec.env = []string{"GOMAXPROCS=2"}
	}
	for _, c := range b.opts.compare {
		if name == "pgrouter-"+c.name {
			spec.bin = c.path
		}
	}
	slot := &routerSlot{spec: spec, err: b.router.err}
	if b.variants == nil {
		b.variants = map[string]*routerSlot{}
	}
	b.variants[name] = slot
	return slot
}

func (b *bench) measure(ctx context.Context, s Scenario, t *Target) Result {
	fmt.Fprintf(os.Stderr, "bench: %-32s %-9s ", s.Name(), t.Name)
	res := runPgbench(ctx, b.workdir, t, s, b.opts.duration)
	fmt.Fprintf(os.Stderr, "tps %8.0f  p50 %7.3f ms  p99 %7.3f ms  cpu/tx %s  %s\n", res.TPS,
		float64(res.P50.Microseconds())/1000, float64(res.P99.Microseconds())/1000, cpu(&res), res.Err)
	return res
}

// medianByTPS picks the run with the median TPS (the upper one of two).
func medianByTPS(rs []Result) Result {
	sorted := slices.Clone(rs)
	slices.SortStableFunc(sorted, func(a, b Result) int { return cmp.Compare(a.TPS, b.TPS) })
	m := sorted[len(sorted)/2]
	m.Runs = len(rs)
	return m
}

// explainRuns adds notes that help read the tables: known PgBouncer
// limitations, and whatever pgrouter logged at warn level or above.
func (b *bench) explainRuns() {
	for _, r := range b.runs {
		if res := r.result("pgbouncer"); res != nil && strings.Contains(res.Err, "prepared statement") {
			b.note("PgBouncer before 1.21 does not support protocol-level prepared statements in transaction"+
				" pooling, so `-M prepared` clients abort through it (%q); its numbers there cover the clients that survived.", res.Err)
			break
		}
	}
	for _, slot := range b.slots() {
		if slot.t == nil {
			continue
		}
		if tail := slot.t.Proc.logTail(20); strings.TrimSpace(tail) != "" {
			b.note("%s logged (last lines, level warn and above):\n```\n%s\n```", slot.spec.name, tail)
		}
	}
}

// idleCPU reports how much CPU each proxy burns with no client at all,
// after the runs: a proxy that keeps spinning (leaked goroutines, busy
// timers) inflates every CPU µs/tx figure, most visibly at c1.
func (b *bench) idleCPU(ctx context.Context) {
	procs := map[string]*Target{"pgbouncer": b.bouncer, "pgrouter": b.router.t, "pgrouter-sharded": b.shRouter.t,
		"pgrouter-4shards": b.xsRouter.t}
	before := map[string]int64{}
	for name, t := range procs {
		if t != nil && t.Proc.alive() {
			if ticks, err := cpuTicks(t.Proc.pid()); err == nil {
				before[name] = ticks
			}
		}
	}
	const window = 3 * time.Second
	select {
	case <-ctx.Done():
		return
	case <-time.After(window):
	}
	var parts []string
	for _, name := range []string{"pgbouncer", "pgrouter", "pgrouter-sharded", "pgrouter-4shards"} {
		t, ok := procs[name]
		if _, measured := before[name]; !ok || !measured {
			continue
		}
		if after, err := cpuTicks(t.Proc.pid()); err == nil {
			msPerSec := float64(after-before[name]) * 1000 / clockTicks / window.Seconds()
			parts = append(parts, fmt.Sprintf("%s %.0f ms/s", name, msPerSec))
		}
	}
	if len(parts) > 0 {
		b.note("CPU with no clients connected, over %s after all runs: %s.", window, strings.Join(parts, ", "))
	}
}

// close stops every process and cluster this run started.
func (b *bench) close() {
	for _, slot := range b.slots() {
		if slot.t != nil {
			slot.t.Proc.stop()
		}
	}
	if b.bouncer != nil {
		b.bouncer.Proc.stop()
	}
	for _, t := range b.floors {
		t.Proc.stop()
	}
	for _, c := range []*localpg.Cluster{b.xsharded, b.sharded, b.main} {
		if c != nil {
			if err := c.Close(); err != nil {
				fmt.Fprintln(os.Stderr, "bench: closing cluster:", err)
			}
		}
	}
	if b.workdir != "" {
		_ = os.RemoveAll(b.workdir)
	}
}

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/pgrouter/pgrouter/topology/localpg"
)

// bench owns everything a run starts; close stops all of it.
type bench struct {
	opts      options
	routerBin string // "" when pgrouter could not be built
	workdir   string

	main     *localpg.Cluster // one primary: direct, PgBouncer and pgrouter targets
	sharded  *localpg.Cluster // two shards, started for the first sharded scenario
	direct   *Target
	bouncer  *Target
	router   routerSlot // pgrouter over main
	shRouter routerSlot // pgrouter over sharded

	runs  []ScenarioRun
	notes []string
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
	b.router.spec = routerSpec{bin: b.routerBin, dir: dir, name: "pgrouter", cluster: b.main, db: benchDB, pool: b.opts.pool}
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

// runScenario runs s against each of its targets, one after the other.
func (b *bench) runScenario(ctx context.Context, s Scenario) ScenarioRun {
	run := ScenarioRun{Scenario: s}
	measure := func(t *Target) {
		fmt.Fprintf(os.Stderr, "bench: %-32s %-9s ", s.Name(), t.Name)
		res := runPgbench(ctx, b.workdir, t, s, b.opts.duration)
		fmt.Fprintf(os.Stderr, "tps %8.0f  p50 %7.3f ms  p99 %7.3f ms  cpu/tx %s  %s\n", res.TPS,
			float64(res.P50.Microseconds())/1000, float64(res.P99.Microseconds())/1000, cpu(&res), res.Err)
		run.Results = append(run.Results, res)
	}
	measure(b.direct)
	if s.Sharded {
		if t, err := b.shardedRouter(ctx); err == nil {
			measure(t)
		} else {
			run.Note = "pgrouter (2 shards) not measured: " + cell(err.Error())
		}
		return run
	}
	measure(b.bouncer)
	if t, err := b.routerTarget(ctx, &b.router); err == nil {
		measure(t)
	} else {
		run.Note = "pgrouter not measured: " + cell(err.Error())
	}
	return run
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
	for _, slot := range []*routerSlot{&b.router, &b.shRouter} {
		if slot.t == nil {
			continue
		}
		if tail := slot.t.Proc.logTail(20); strings.TrimSpace(tail) != "" {
			b.note("%s logged (last lines, level warn and above):\n```\n%s\n```", slot.spec.name, tail)
		}
	}
}

// close stops every process and cluster this run started.
func (b *bench) close() {
	for _, t := range []*Target{b.router.t, b.shRouter.t, b.bouncer} {
		if t != nil && t.Proc != nil {
			t.Proc.stop()
		}
	}
	for _, c := range []*localpg.Cluster{b.sharded, b.main} {
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

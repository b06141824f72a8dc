// Command bench measures pgrouter against Postgres itself and PgBouncer with
// pgbench, all in one run on one machine, and writes bench/RESULTS.md.
//
//	go run ./test/bench            # full run, -T 8 per pgbench
//	go run ./test/bench --quick    # smoke run: fewer scenarios, -T 3
//
// Everything it starts (Postgres clusters, pgbouncer, pgrouter, pgbench) is
// time-bounded and stopped on exit or SIGINT. It exits non-zero only when the
// harness itself fails, never because of a number.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

type options struct {
	duration time.Duration
	quick    bool
	scale    int
	pool     int
	out      string
	pgrouter string // prebuilt binary; "" builds bin/pgrouter
	only     string // run only scenarios whose name contains this
	repeat   int    // rounds per scenario; the median-TPS run is reported
	compare  []compareBin
}

// compareBin is another pgrouter binary measured next to the main one.
type compareBin struct{ name, path string }

func main() { os.Exit(run()) }

func run() int {
	var o options
	flag.DurationVar(&o.duration, "duration", 8*time.Second, "pgbench -T per run")
	flag.BoolVar(&o.quick, "quick", false, "smoke run: fewer scenarios, 3 s each (unless --duration is given)")
	flag.IntVar(&o.scale, "scale", 10, "pgbench -i scale")
	flag.IntVar(&o.pool, "pool", 20, "backend pool size of both proxies")
	flag.StringVar(&o.out, "out", "", "report path (default <repo>/bench/RESULTS.md)")
	flag.StringVar(&o.pgrouter, "pgrouter", "", "pgrouter binary to measure (default: build <repo>/bin/pgrouter)")
	flag.StringVar(&o.only, "only", "", "run only the scenarios whose name contains this text (e.g. \"c500\")")
	flag.IntVar(&o.repeat, "repeat", 1, "run each scenario this many interleaved rounds and report each target's median-TPS run")
	flag.Func("compare", "`name=path`: another pgrouter binary (e.g. an older commit's) measured as target pgrouter-name in the same rounds of every single-node scenario; repeatable", func(v string) error {
		name, path, ok := strings.Cut(v, "=")
		if !ok || name == "" || path == "" {
			return fmt.Errorf("want name=path, got %q", v)
		}
		o.compare = append(o.compare, compareBin{name, path})
		return nil
	})
	flag.Parse()
	if o.quick && !flagGiven("duration") {
		o.duration = 3 * time.Second
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	b := &bench{opts: o}
	err := b.run(ctx)
	b.close()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		if ctx.Err() != nil {
			return 130
		}
		return 1
	}
	return 0
}

func flagGiven(name string) bool {
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == name })
	return given
}

// run does the whole measurement and writes the report.
func (b *bench) run(ctx context.Context) error {
	if err := raiseNoFile(); err != nil {
		b.note("could not raise RLIMIT_NOFILE: %v", err)
	}
	root, err := repoRoot()
	b.root = root
	if err != nil {
		return err
	}
	if b.opts.out == "" {
		b.opts.out = filepath.Join(root, "bench", "RESULTS.md")
	}
	if err := ensurePgBouncer(ctx); err != nil {
		return err
	}
	b.routerBin = b.opts.pgrouter
	if b.routerBin == "" {
		bin, warning, err := buildPgrouter(ctx, root)
		if err != nil {
			b.note("pgrouter not measured: %v", err)
		} else if warning != "" {
			b.note("%s", warning)
		}
		b.routerBin = bin
	}
	machine := describeMachine(ctx, root, b.opts)
	if err := b.setup(ctx); err != nil {
		return err
	}
	for _, s := range scenarios(b.opts.quick) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !strings.Contains(s.Name(), b.opts.only) {
			continue
		}
		b.runs = append(b.runs, b.runScenario(ctx, s))
	}
	b.anatomyRuns(ctx)
	b.idleRuns(ctx)
	machine.LoadEnd = loadAvg()
	b.idleCPU(ctx)
	b.explainRuns()
	return b.writeResults(machine)
}

func (b *bench) writeResults(m Machine) error {
	var buf bytes.Buffer
	writeReport(&buf, m, report{runs: b.runs, idle: b.idle, anatomy: b.anatomy, notes: b.notes})
	fmt.Print("\n" + buf.String())
	if err := os.MkdirAll(filepath.Dir(b.opts.out), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(b.opts.out, buf.Bytes(), 0o644); err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "bench: wrote", b.opts.out)
	return nil
}

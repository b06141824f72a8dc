package main

import (
	"embed"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// scripts are the custom pgbench scripts of the sharded scenarios.
//
//go:embed scripts/*.sql
var scripts embed.FS

// Scenario is one pgbench workload, run against every target.
type Scenario struct {
	Builtin string // pgbench -b name ("select-only", "tpcb-like"), or ""
	Script  string // custom script from scripts/, when Builtin is ""
	Mode    string // -M simple | extended | prepared
	Clients int
	Sharded bool // run through the 2-shard pgrouter vs one direct Postgres
	// CrossShard: run through pgrouter over 4 shards (no shard key: every
	// shard answers, pgrouter merges) vs one direct Postgres holding all rows.
	CrossShard bool
	// Variants: more pgrouter processes over the main cluster that run this
	// scenario too (see variantSpec): routing on, GOMAXPROCS 1 and 2.
	Variants []string
	// Floors: the floor forwarders (test/bench/floor) run this scenario too.
	Floors bool
	// NoDirect: Postgres itself is not a target (more clients than its
	// max_connections: only the proxies' queues can take them).
	NoDirect bool
}

// Name is how the scenario is titled in the report.
func (s Scenario) Name() string {
	w := s.Builtin
	if w == "" {
		w = s.Script
	}
	return fmt.Sprintf("%s %s c%d", w, s.Mode, s.Clients)
}

// minManyClients is the shortest run at c500: connecting 500 clients
// directly to Postgres takes ~2 s here (one fork each; over 6 s when the
// box is busy), all inside -T, and the backends start with cold caches.
// Shorter runs measure only that.
const minManyClients = 12 * time.Second

// duration is how long pgbench runs s when asked for dur.
func (s Scenario) duration(dur time.Duration) time.Duration {
	if s.Clients >= 500 {
		return max(dur, minManyClients)
	}
	return dur
}

func (s Scenario) pgbenchArgs(dur time.Duration, workdir string) []string {
	args := []string{"-n", "-T", strconv.Itoa(int(s.duration(dur).Round(time.Second).Seconds())),
		"-c", strconv.Itoa(s.Clients), "-j", strconv.Itoa(min(2, s.Clients)), "-M", s.Mode}
	if s.Builtin != "" {
		return append(args, "-b", s.Builtin)
	}
	return append(args, "-f", filepath.Join(workdir, s.Script))
}

// scenarios lists what a run measures. quick is a smoke run: fewer of them.
func scenarios(quick bool) []Scenario {
	sel := func(mode string, c int) Scenario { return Scenario{Builtin: "select-only", Mode: mode, Clients: c} }
	kv := func(script string) Scenario {
		return Scenario{Script: script, Mode: "simple", Clients: 32, Sharded: true}
	}
	xs := func(script, mode string) Scenario {
		return Scenario{Script: script, Mode: mode, Clients: 8, CrossShard: true}
	}
	tpcb := Scenario{Builtin: "tpcb-like", Mode: "simple", Clients: 32}
	c32 := sel("simple", 32)
	c32.Variants = []string{variantRouting, variantProcs1, variantProcs2}
	c32.Floors = true
	// issue 14: 2,000 clients on pool 20, p99 queue wait from pgrouter's metrics
	c2000 := Scenario{Builtin: "select-only", Mode: "simple", Clients: 2000, NoDirect: true}
	if quick {
		return []Scenario{
			sel("simple", 1), sel("prepared", 1), c32, sel("prepared", 32), sel("simple", 500),
			c2000, kv("kv_autocommit.sql"), kv("kv_tx.sql"),
			xs("xs_orderby_limit.sql", "simple"), xs("xs_orderby_limit.sql", "extended"),
		}
	}
	var out []Scenario
	for _, mode := range []string{"simple", "extended", "prepared"} {
		for _, c := range []int{1, 32, 500} {
			if mode == "simple" && c == 32 {
				out = append(out, c32)
				continue
			}
			out = append(out, sel(mode, c))
		}
	}
	// issue 3 names -M prepared c100 as a target of its own
	out = append(out, sel("prepared", 100), c2000, tpcb, kv("kv_autocommit.sql"), kv("kv_tx.sql"))
	for _, mode := range []string{"simple", "extended"} {
		out = append(out, xs("xs_orderby_limit.sql", mode), xs("xs_groupby_count.sql", mode))
	}
	return out
}

// writeScripts copies the embedded scripts into dir for pgbench -f.
func writeScripts(dir string) error {
	entries, err := scripts.ReadDir("scripts")
	if err != nil {
		return err
	}
	for _, e := range entries {
		b, err := scripts.ReadFile("scripts/" + e.Name())
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

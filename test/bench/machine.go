package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/pgrouter/pgrouter/topology/localpg"
)

// describeMachine collects the facts the report opens with. Missing tools
// show up as "unknown" rather than failing the run.
func describeMachine(ctx context.Context, root string, o options) Machine {
	m := Machine{
		Date: time.Now(), NProc: runtime.NumCPU(), GoVersion: runtime.Version(),
		LoadStart: loadAvg(), Duration: o.duration, Scale: o.scale, Pool: o.pool, Repeat: max(1, o.repeat), Mode: "full",
	}
	if o.quick {
		m.Mode = "quick"
	}
	if o.only != "" {
		m.Mode += fmt.Sprintf(", only scenarios naming %q", o.only)
	}
	pgBin := "postgres"
	if dir, err := localpg.FindBinDir(); err == nil {
		pgBin = filepath.Join(dir, "postgres")
	}
	m.Postgres = firstLine(ctx, pgBin, "--version")
	bouncer := "pgbouncer"
	if _, err := exec.LookPath(bouncer); err != nil {
		bouncer = "/usr/sbin/pgbouncer"
	}
	m.PgBouncer = firstLine(ctx, bouncer, "--version")
	m.Pgbench = firstLine(ctx, "pgbench", "--version")
	m.Commit = firstLine(ctx, "git", "-C", root, "rev-parse", "--short", "HEAD")
	if out, err := exec.CommandContext(ctx, "git", "-C", root, "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(out) > 0 {
		m.Commit += " (with uncommitted changes in the tree)"
	}
	if o.pgrouter != "" {
		// The tree's commit says nothing about a binary built elsewhere.
		m.Commit = fmt.Sprintf("unknown: binary %s given with --pgrouter (tree at %s)", o.pgrouter, m.Commit)
	}
	for _, c := range o.compare {
		m.Compare = append(m.Compare, fmt.Sprintf("`pgrouter-%s`: %s", c.name, c.path))
	}
	return m
}

func firstLine(ctx context.Context, name string, args ...string) string {
	out, err := exec.CommandContext(ctx, name, args...).Output()
	if err != nil {
		return name + " unknown"
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}

// loadAvg is the 1/5/15-minute load average from /proc/loadavg.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

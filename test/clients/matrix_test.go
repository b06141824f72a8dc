package clients

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// workload is one driver's implementation of the common workload.
// Exactly one of script and inproc is set: script returns the command that
// runs it (it gets three more arguments: the DSN, the table suffix and the
// DSN without SCRAM, see target), inproc runs it in this process.
type workload struct {
	name   string
	need   func() error // nil when the driver is installed; else says how to install it
	script func(t *testing.T) []string
	inproc func(ctx context.Context, t target, suffix string) (transcript, stderr string)
}

var workloads = []workload{
	{name: "asyncpg", need: pyModule("asyncpg", "python3-asyncpg"), script: python("asyncpg_client.py")},
	{name: "psycopg", need: pyModule("psycopg", "python3-psycopg"), script: python("psycopg_client.py")},
	{name: "psycopg2", need: pyModule("psycopg2", "python3-psycopg2"), script: python("psycopg2_client.py")},
	{name: "sqlalchemy", need: pyModule("sqlalchemy", "python3-sqlalchemy python3-psycopg2"), script: python("sqlalchemy_client.py")},
	{name: "nodepg", need: nodeModule("pg"), script: node("pg_client.js")},
	{name: "postgresjs", need: nodeModule("postgres"), script: node("postgresjs_client.js")},
	{name: "jdbc", need: jdbcInstalled, script: jdbc},
	{name: "pgx", inproc: pgxWorkload},
}

// schema is created fresh for every run, in the proxied database on every
// shard and in the direct one, so both runs start from the same rows.
const schema = `
DROP TABLE IF EXISTS items_%[1]s, ref_%[1]s;
CREATE TABLE items_%[1]s (id int PRIMARY KEY, name text, qty int, price numeric(10,2), at timestamptz, ok bool, tags text[]);
CREATE TABLE ref_%[1]s (id int PRIMARY KEY, name text);
INSERT INTO ref_%[1]s VALUES (1, 'one'), (2, 'two'), (3, 'three');
`

// checkTimeout bounds one check inside a workload (the scripts enforce it
// themselves and print "TIMEOUT"); runTimeout bounds a whole run.
const runTimeout = 150 * time.Second

// directMustShow: checks whose direct (Postgres) result is known; it proves
// the workload really produced the error it is about, so that a transcript
// full of identical nonsense cannot pass.
// Keys are name prefixes.
var directMustShow = map[string][]string{
	"err_syntax":       {"ERROR 42601"},
	"err_unique":       {"ERROR 23505"},
	"err_batch_unique": {"ERROR 23505"},
	"err_div":          {"ERROR 22012"},
	"err_simple_div":   {"ERROR 22012"},
	"cancel":           {"ERROR 57014", "timeout-cancelled"},
}

// knownLimits are checks where pgrouter cannot give Postgres's answer and
// must refuse with exactly this result instead (topology/workload/check).
// Everything else must match Postgres.
var knownLimits = map[string]struct{ result, why string }{}

// minChecks: a direct transcript shorter than this means the script broke.
const minChecks = 20

func TestDriver(t *testing.T) {
	for _, w := range workloads {
		t.Run(w.name, func(t *testing.T) {
			if w.need != nil {
				if err := w.need(); err != nil {
					t.Fatal(err)
				}
			}
			for _, tp := range topos {
				t.Run(tp.name, func(t *testing.T) { runWorkload(t, tp, w) })
			}
		})
	}
}

func runWorkload(t *testing.T, tp *topo, w workload) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*runTimeout)
	defer cancel()
	createSchema(t, ctx, tp, w.name)
	primary := tp.env.Cluster.Shards[0].Primary
	direct := transcriptOf(t, ctx, w, target{
		dsn:      primary.DSN(directDB),
		trustDSN: fmt.Sprintf("postgres://postgres@/%s?host=%s&port=%d&sslmode=disable", directDB, primary.Dir, primary.Port),
	})
	proxied := transcriptOf(t, ctx, w, target{
		dsn:      tp.env.DSN(userOf(w.name), userOf(w.name), "app"),
		trustDSN: tp.env.DSN("trusty", "", "app"),
	})
	checkDirect(t, direct)
	if diffs := compare(tp.name+"/"+w.name+"/", direct, proxied); len(diffs) > 0 {
		t.Errorf("%s through pgrouter (%s) differs from Postgres in %d of %d checks:\n%s",
			w.name, tp.name, len(diffs), len(direct.lines), strings.Join(diffs, "\n"))
		if proxied.stderr != "" {
			t.Logf("errors through pgrouter:\n%s", errorLines(proxied.stderr))
		}
		return
	}
	t.Logf("%s (%s): all %d checks match Postgres", w.name, tp.name, len(direct.lines))
}

func createSchema(t *testing.T, ctx context.Context, tp *topo, suffix string) {
	t.Helper()
	sql := fmt.Sprintf(schema, suffix)
	if err := tp.env.ExecOnPrimaries(ctx, "app", sql); err != nil {
		t.Fatal(err)
	}
	c, err := pgx.Connect(ctx, tp.env.Cluster.Shards[0].Primary.DSN(directDB))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, sql, pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatal(err)
	}
	// Reads through pgrouter may go to a replica: it must have the tables.
	if err := tp.env.Cluster.WaitReplicated(ctx); err != nil {
		t.Fatal(err)
	}
}

// transcript is a workload's output: "name: result" lines in order, and
// whatever it wrote to stderr (error messages, for the report).
type transcript struct {
	lines  []check
	stderr string
}

type check struct{ name, result string }

// target is where a workload runs: dsn logs in with a password (SCRAM);
// trustDSN needs none (Postgres's Unix socket, pgrouter's trust user), for
// checks that open hundreds of connections from this (race-instrumented)
// process, where client-side SCRAM would dominate.
type target struct{ dsn, trustDSN string }

func transcriptOf(t *testing.T, ctx context.Context, w workload, to target) transcript {
	t.Helper()
	dsn := to.dsn
	if w.inproc != nil {
		return parseTranscript(w.inproc(ctx, to, w.name))
	}
	ctx, cancel := context.WithTimeout(ctx, runTimeout)
	defer cancel()
	args := append(w.script(t), dsn, w.name, to.trustDSN)
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	tr := parseTranscript(stdout.String(), stderr.String())
	if err != nil {
		// A crashed or killed script still compares what it printed; the
		// missing checks show up as differences.
		tr.stderr += fmt.Sprintf("\n%s exited: %v", args[0], err)
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			tr.stderr += " (killed after " + runTimeout.String() + ")"
		}
	}
	return tr
}

func parseTranscript(out, stderr string) transcript {
	tr := transcript{stderr: stderr}
	for _, l := range strings.Split(out, "\n") {
		name, result, ok := strings.Cut(l, ": ")
		if !ok || name == "" || strings.ContainsAny(name, " \t") {
			continue
		}
		tr.lines = append(tr.lines, check{name, result})
	}
	return tr
}

// checkDirect rejects a direct run that cannot be a reference: too short,
// a timeout against Postgres itself, or an error check without its error.
func checkDirect(t *testing.T, d transcript) {
	t.Helper()
	if len(d.lines) < minChecks {
		t.Fatalf("direct run printed %d checks (want >= %d); stderr:\n%s", len(d.lines), minChecks, d.stderr)
	}
	for _, c := range d.lines {
		if strings.Contains(c.result, "TIMEOUT") {
			t.Errorf("direct run: %s timed out against Postgres itself", c.name)
		}
		for prefix, want := range directMustShow {
			if strings.HasPrefix(c.name, prefix) && !oneOf(c.result, want) {
				t.Errorf("direct run: %s = %q, want one of %q", c.name, c.result, want)
			}
		}
	}
	if t.Failed() {
		t.Fatalf("direct stderr:\n%s", d.stderr)
	}
}

func oneOf(s string, wants []string) bool {
	for _, w := range wants {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}

// compare lists every check whose result through pgrouter differs (and is
// not its known limit; key prefixes the names in knownLimits).
func compare(key string, direct, proxied transcript) []string {
	got := map[string]string{}
	for _, c := range proxied.lines {
		got[c.name] = c.result
	}
	var diffs []string
	for _, c := range direct.lines {
		p, ok := got[c.name]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("  %s: missing through pgrouter (postgres: %s)", c.name, clip(c.result)))
		case p != c.result && knownLimits[key+c.name].result == p && p != "":
			// the documented refusal: fine
		case p != c.result:
			at := firstDiff(c.result, p)
			diffs = append(diffs, fmt.Sprintf("  %s (from byte %d):\n      postgres: %s\n      pgrouter: %s",
				c.name, at, around(c.result, at), around(p, at)))
		}
		delete(got, c.name)
	}
	for _, c := range proxied.lines {
		if _, extra := got[c.name]; extra {
			diffs = append(diffs, fmt.Sprintf("  %s: only through pgrouter: %s", c.name, clip(c.result)))
		}
	}
	return diffs
}

func firstDiff(a, b string) int {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	return i
}

// around shows s near byte at, where two results start to differ.
func around(s string, at int) string {
	from := max(0, at-120)
	if from > 0 {
		return "…" + clip(s[from:])
	}
	return clip(s)
}

func clip(s string) string {
	if len(s) > 400 {
		return s[:400] + "…"
	}
	return s
}

func pyModule(module, pkgs string) func() error {
	return func() error {
		if out, err := exec.Command("/usr/bin/python3", "-c", "import "+module).CombinedOutput(); err != nil {
			return fmt.Errorf("python module %s missing (install: make deps, or apt-get install -y %s): %v\n%s", module, pkgs, err, out)
		}
		return nil
	}
}

func python(file string) func(*testing.T) []string {
	return func(*testing.T) []string { return []string{"/usr/bin/python3", file} }
}

func nodeModule(module string) func() error {
	return func() error {
		if _, err := exec.LookPath("node"); err != nil {
			return fmt.Errorf("node missing (install: make deps, or apt-get install -y nodejs npm): %v", err)
		}
		if _, err := os.Stat("node_modules/" + module); err != nil {
			return fmt.Errorf("npm package %s missing (install: make deps, or cd test/clients && npm install): %v", module, err)
		}
		return nil
	}
}

func node(file string) func(*testing.T) []string {
	return func(*testing.T) []string { return []string{"node", file} }
}

// errorLines keeps the distinct error messages of a workload's stderr (not
// its "# check" progress lines).
func errorLines(stderr string) string {
	var out []string
	seen := map[string]bool{}
	for _, l := range strings.Split(stderr, "\n") {
		if l != "" && !strings.HasPrefix(l, "# ") && !seen[l] {
			seen[l] = true
			out = append(out, "  "+l)
		}
	}
	return strings.Join(out, "\n")
}

// Package clients drives pgrouter with non-Go drivers: node-postgres and
// psycopg 3. .ci/run installs them (npm install here; Debian python3-psycopg).
package clients

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/pgrouter/pgrouter/test/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	var run func() int
	env, run = testenv.Main(m, testenv.Options{Shards: 1, Replicas: 1, Sections: map[string]string{"pool": "  size: 4"}}, nil)
	os.Exit(run())
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

func TestNodePostgres(t *testing.T) {
	if _, err := os.Stat("node_modules/pg"); err != nil {
		t.Fatalf("node-postgres is not installed (run: npm install in test/clients; .ci/run does): %v", err)
	}
	out := run(t, "node", "pg_client.js", env.AppDSN())
	if got := strings.Count(out, "ok "); got != 6 {
		t.Fatalf("want 6 passed checks, got %d:\n%s", got, out)
	}
}

func TestPsycopg(t *testing.T) {
	out := run(t, "/usr/bin/python3", "psycopg_client.py", env.AppDSN())
	if got := strings.Count(out, "ok "); got != 7 {
		t.Fatalf("want 7 passed checks, got %d:\n%s", got, out)
	}
}

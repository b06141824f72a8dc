// Package clients runs the driver matrix: asyncpg (with its Pool),
// postgres.js, psycopg 2 and 3, SQLAlchemy, node-postgres, JDBC and pgx each
// run one workload directly against Postgres and through pgrouter, on two
// topologies (one shard with a replica; two shards with replicas, a sharded
// and a reference table, two_phase_commit on). Each workload prints a
// transcript, one line per check ("name: result"); the transcripts of the
// direct and the proxied run must be identical. Drivers come from Debian
// (python3-asyncpg, python3-psycopg, python3-psycopg2, python3-sqlalchemy,
// libpostgresql-jdbc-java, default-jdk-headless) and npm (package.json here),
// installed by make deps; a missing one fails its test saying so.
package clients

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pgrouter/pgrouter/test/testenv"
	"github.com/pgrouter/pgrouter/topology/localpg"
)

// topo is one running topology: a cluster with pgrouter in front and the
// database "direct" on shard0's primary, the unsharded reference the
// workloads also run against.
type topo struct {
	name string
	env  *testenv.Env
}

var topos []*topo

// directDB holds the same schema as the proxied database "app", unsharded.
const directDB = "direct"

// poolSize is small on purpose: every driver user gets its own pools of
// this size, and the concurrency checks run 200 clients over them.
const poolSize = 5

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) (code int) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	opts := []struct {
		name string
		o    testenv.Options
	}{
		{"1shard", testenv.Options{Shards: 1, Replicas: 1}},
		{"2shards", testenv.Options{Shards: 2, Replicas: 1, Sections: map[string]string{"db": shardedSection()}}},
	}
	topos = make([]*topo, len(opts))
	errs := make([]error, len(opts))
	var wg sync.WaitGroup
	for i, o := range opts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			topos[i], errs[i] = startTopo(ctx, o.name, o.o)
		}()
	}
	wg.Wait()
	defer func() {
		for _, t := range topos {
			if t != nil && !t.close() {
				code = 1
			}
		}
	}()
	for _, err := range errs {
		if err != nil {
			fmt.Fprintln(os.Stderr, "test environment:", err)
			return 1
		}
	}
	return m.Run()
}

// close stops pgrouter, then the cluster. A pgrouter that does not shut
// down in time (a session it cannot end) is a failure, reported; the
// cluster is stopped anyway so that the package does not hang.
func (t *topo) close() bool {
	done := make(chan struct{})
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		t.env.Proxy.Close(ctx)
		close(done)
	}()
	ok := true
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		fmt.Fprintf(os.Stderr, "FAIL: %s: pgrouter did not shut down within 15s of Close (5s deadline): a session it cannot end\n", t.name)
		ok = false
	}
	t.env.Cluster.Close()
	return ok
}

func startTopo(ctx context.Context, name string, o testenv.Options) (*topo, error) {
	if o.Sections == nil {
		o.Sections = map[string]string{}
	}
	o.Sections["pool"] = fmt.Sprintf("  size: %d", poolSize)
	e, err := testenv.Start(ctx, withDriverUsers(o))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if err := e.Cluster.Shards[0].Primary.Exec(ctx, "CREATE DATABASE "+directDB); err != nil {
		e.Close()
		return nil, err
	}
	return &topo{name: name, env: e}, nil
}

// withDriverUsers adds one login per workload: each has its own pools, so a
// driver that leaks backends cannot starve the next one.
// localpg's superuser password is "postgres" unless Options say otherwise.
func withDriverUsers(o testenv.Options) testenv.Options {
	o.Users = testenv.DefaultUsers("postgres")
	for _, w := range workloads {
		u := userOf(w.name)
		o.Users = append(o.Users, localpg.ConfigUser{Name: u, Password: u, ServerUser: "postgres", ServerPassword: "postgres"})
	}
	return o
}

// userOf is the pgrouter login of a workload.
func userOf(workload string) string { return "drv_" + workload }

// shardedSection configures the 2-shard database: each workload's items
// table is hash-sharded on id, its ref table and plans are reference tables.
func shardedSection() string {
	var b strings.Builder
	b.WriteString("    two_phase_commit: true\n    sharded_tables:\n")
	for _, w := range workloads {
		fmt.Fprintf(&b, "      - {table: items_%s, column: id, type: int, function: hash}\n", w.name)
	}
	b.WriteString("      - {table: items_refusal, column: id, type: int, function: hash}\n") // refusal_test.go
	b.WriteString("    reference_tables: [plans")
	for _, w := range workloads {
		fmt.Fprintf(&b, ", ref_%s", w.name)
	}
	b.WriteString(", ref_refusal]\n")
	return b.String()
}

package wire

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgrouter/pgrouter/proxy"
	"github.com/pgrouter/pgrouter/router"
	"github.com/pgrouter/pgrouter/test/testenv"
)

// The multi-shard paths (scatter, split INSERT, keyless UPDATE/DELETE,
// reference writes) run testdata/sharded/*.pgt through pgrouter over two
// shards and, as the reference, on one unsharded database holding the same
// rows. Clients differ from the backends' defaults in their session
// settings: that is where a proxy's own traffic leaks into results.
const (
	shardedDB = `    two_phase_commit: true
    sharded_tables:
      - {table: users, column: id, type: int, function: hash}
    reference_tables: [plans]
`
	shardedSchema = `CREATE TABLE users (id bigint PRIMARY KEY, name text, score int);
CREATE TABLE plans (id int PRIMARY KEY, name text)`
	singleDB = "wire_single"
	userRows = 20
)

var sharded struct {
	once sync.Once
	env  *testenv.Env
	err  error
}

// shardedEnv starts the 2-shard cluster on first use (only the tests that
// need it pay for it); TestMain's teardown stops it.
func shardedEnv(t *testing.T) *testenv.Env {
	sharded.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		e, err := testenv.Start(ctx, testenv.Options{Shards: 2, Sections: map[string]string{
			"db": shardedDB, "pool": fmt.Sprintf(poolSection, 3), "health": healthSection}})
		if err != nil {
			sharded.err = err
			return
		}
		sharded.env = e
		if err = e.ExecOnPrimaries(ctx, "app", shardedSchema); err == nil {
			if err = e.Cluster.Shards[0].Primary.Exec(ctx, "CREATE DATABASE "+singleDB); err == nil {
				err = execDSN(ctx, e.Cluster.Shards[0].Primary.DSN(singleDB), shardedSchema)
			}
		}
		sharded.err = err
	})
	if sharded.err != nil {
		t.Fatal(sharded.err)
	}
	return sharded.env
}

func execDSN(ctx context.Context, dsn, sql string) error {
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	_, err = c.Exec(ctx, sql, pgx.QueryExecModeSimpleProtocol)
	return err
}

// resetRows gives the single database and the shards the same rows again:
// users i on the shard pgrouter's own hash puts it on, plans everywhere.
func resetRows(ctx context.Context, e *testenv.Env) error {
	names := make([]string, len(e.Config.Shards))
	for i, s := range e.Config.Shards {
		names[i] = s.Name
	}
	r, err := router.New(&e.Config.Databases[0], names)
	if err != nil {
		return err
	}
	perShard := make([][]string, len(names))
	var all []string
	for id := 1; id <= userRows; id++ {
		row := fmt.Sprintf("(%d, 'user%d', %d)", id, id, id*10)
		s, err := r.ShardOfKey("users", []byte(fmt.Sprint(id)))
		if err != nil {
			return err
		}
		perShard[s] = append(perShard[s], row)
		all = append(all, row)
	}
	const plans = "INSERT INTO plans VALUES (1, 'free'), (2, 'basic'), (3, 'pro')"
	q := func(rows []string) string {
		return "TRUNCATE users, plans; " + plans + "; INSERT INTO users VALUES " + strings.Join(rows, ", ")
	}
	for i, s := range e.Cluster.Shards {
		if err := execDSN(ctx, s.Primary.DSN("app"), q(perShard[i])); err != nil {
			return err
		}
	}
	return execDSN(ctx, e.Cluster.Shards[0].Primary.DSN(singleDB), q(all))
}

// shardedProfiles are the profiles without their private schema: the
// sharded tables live in public on every shard.
func shardedProfiles() []profile {
	out := make([]profile, len(profiles))
	for i, p := range profiles {
		params := map[string]string{}
		for k, v := range p.params {
			if k != "search_path" {
				params[k] = v
			}
		}
		out[i] = profile{p.name, "public", params}
	}
	return out
}

// TestWireScriptsSharded: each script once on a fresh pgrouter (cold) and
// once on the long-lived one (warm), with different profiles, one client at
// a time (the scripts write to shared tables); same marks as TestWireScripts.
func TestWireScriptsSharded(t *testing.T) {
	scripts, err := loadScripts("testdata/sharded")
	if err != nil {
		t.Fatal(err)
	}
	if len(scripts) == 0 {
		t.Fatal("no scripts in testdata/sharded")
	}
	e := shardedEnv(t)
	ps := shardedProfiles()
	for i, s := range scripts {
		t.Run(s.name, func(t *testing.T) {
			diffs := runSharded(t, e, ps, i, withProbe(s))
			switch {
			case len(diffs) == 0 && s.bug != "" && s.intermittent == "":
				t.Errorf("marked \"# bug: %s\" but now matches Postgres: remove the mark", s.bug)
			case len(diffs) > 0 && s.bug == "":
				t.Errorf("diverges from one Postgres:\n%s", strings.Join(diffs, "\n"))
			case len(diffs) > 0:
				t.Logf("known bug (%s):\n%s", s.bug, strings.Join(diffs, "\n"))
			}
		})
	}
}

func runSharded(t *testing.T, e *testenv.Env, ps []profile, idx int, s *script) []string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	inst, err := proxy.Start(ctx, e.Config, discardLog())
	if err != nil {
		t.Fatal(err)
	}
	defer closeInstance(inst)
	var diffs []string
	for _, m := range []struct {
		name string
		k    int
		addr string
	}{{"cold", idx % len(ps), inst.Addr}, {"warm", (idx + 1) % len(ps), e.Proxy.Addr}} {
		p := ps[m.k]
		if err := resetRows(ctx, e); err != nil {
			t.Fatal(err)
		}
		want := play(ctx, e.Cluster.Shards[0].Primary.DSN(singleDB), p, s, refTimeout, nil)
		if bad := failedRead(want); bad != "" {
			t.Fatalf("the script itself fails on Postgres (profile %s): %s", p.name, bad)
		}
		if err := resetRows(ctx, e); err != nil {
			t.Fatal(err)
		}
		got := play(ctx, proxyDSN(m.addr), p, s, proxyTimeout, nil)
		diffs = appendDiff(diffs, s, m.name+"/"+p.name, want, got)
		if len(diffs) > 0 && s.bug != "" {
			break
		}
	}
	return diffs
}

package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/spf13/cobra"

	"github.com/pgrouter/pgrouter/config"
	"github.com/pgrouter/pgrouter/proxy"
	"github.com/pgrouter/pgrouter/router/sharding"
	"github.com/pgrouter/pgrouter/topology/localpg"
)

func newDemoCmd() *cobra.Command {
	var o demoOptions
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Start a local sharded Postgres cluster with sample data and pgrouter in front",
		Long: "demo starts N shards (primary + streaming replicas) from the installed Postgres binaries,\n" +
			"loads users/orders sharded by user_id and a reference table plans, writes the generated\n" +
			"config next to the data, and serves until interrupted; then everything is removed\n" +
			"(unless --dir was given). The screen shows addresses and example commands; the\n" +
			"proxy's logs go to a file in the cluster directory (--log-file - : to stderr).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runDemo(cmd, o) },
	}
	f := cmd.Flags()
	f.IntVar(&o.shards, "shards", 2, "number of shards")
	f.IntVar(&o.replicas, "replicas", 1, "streaming replicas per shard")
	f.IntVar(&o.fleet, "fleet", 0, "run N pgrouters as a fleet on a local etcd (Debian package etcd-server); member i listens on --listen's port + i")
	f.IntVar(&o.spares, "spare-shards", 0, "extra empty shards (hash: []) with the schema and reference tables: targets to reshard into")
	f.StringVar(&o.listen, "listen", "127.0.0.1:6432", "pgrouter client address")
	f.StringVar(&o.metrics, "metrics", "127.0.0.1:9930", "Prometheus metrics address")
	f.StringVar(&o.dir, "dir", "", "data directory to keep (default: a temporary one, removed on exit)")
	f.StringVar(&o.logFile, "log-file", "", "where the proxy logs go (default: pgrouter.log in the cluster directory; - for stderr)")
	return cmd
}

type demoOptions struct {
	shards, replicas int
	spares           int
	fleet            int // members of a fleet on a local etcd; 0 = one pgrouter on the file
	listen, metrics  string
	dir, logFile     string
}

func runDemo(cmd *cobra.Command, o demoOptions) error {
	ctx := cmd.Context()
	began := time.Now()
	fmt.Fprintf(cmd.ErrOrStderr(), "starting %d shard(s) x (1 primary + %d replica(s)) and loading sample data (a few seconds)...\n", o.shards, o.replicas)
	if o.spares < 0 || o.shards < 1 {
		return fmt.Errorf("--shards must be ≥ 1 and --spare-shards ≥ 0")
	}
	c, err := localpg.Start(ctx, localpg.Options{Shards: o.shards + o.spares, Replicas: o.replicas, Dir: o.dir, NoSignalHandler: true})
	if err != nil {
		return err
	}
	defer c.Close()
	path, err := writeDemoConfig(c, "pgrouter.yaml", o.listen, o.metrics, demoHash(o.shards, o.spares))
	if err != nil {
		return err
	}
	split := ""
	if o.spares > 0 { // the placement `pgrouter reshard --to` moves to: the role app may reshard (REPLICATION, owns the tables)
		if split, err = writeDemoConfig(c, "pgrouter-split.yaml", o.listen, o.metrics, demoSplit(o.shards, o.spares)); err != nil {
			return err
		}
	}
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	if err := loadDemoData(ctx, c, cfg); err != nil {
		return err
	}
	logPath, logOut, err := openDemoLog(cmd, c.Dir, o.logFile)
	if err != nil {
		return err
	}
	defer logOut.Close()
	log := buildLoggerTo(cmd, nil, logOut)
	var inst *proxy.Instance
	reload := func() { inst.Server.Reload(path, false, "sighup") }
	screen := demoScreen{shards: o.shards, spares: o.spares, replicas: o.replicas, config: path, split: split, logs: logPath, kept: o.dir != ""}
	if o.fleet > 0 {
		fl, err := startDemoFleet(ctx, o.fleet, c.Dir, path, log)
		if err != nil {
			return err
		}
		defer fl.stop(1)
		inst, reload = fl.members[0].inst, fl.reload
		screen.etcd, screen.members = fl.etcd.URL, fl.dsns()[1:]
	} else if inst, err = proxy.Start(ctx, cfg, log); err != nil {
		return err
	}
	inst.Server.SetVersion(versionLine())
	screen.ready, screen.addr, screen.metrics = time.Since(began), inst.Addr, inst.MetricsAddr
	printDemoScreen(cmd.OutOrStdout(), screen)
	err = runUntilSignal(inst, cfg, reload, log)
	fmt.Fprintln(cmd.ErrOrStderr(), "pgrouter demo: stopped; stopping the Postgres servers")
	return err
}

// openDemoLog opens the file the proxy logs to, so that JSON lines do not
// scroll the DSN off the demo's screen. "-" keeps them on stderr.
func openDemoLog(cmd *cobra.Command, dir, name string) (string, io.WriteCloser, error) {
	if name == "-" {
		return "stderr", nopCloser{cmd.ErrOrStderr()}, nil
	}
	if name == "" {
		name = filepath.Join(dir, "pgrouter.log")
	}
	f, err := os.OpenFile(name, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	return name, f, err
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

const demoSchema = `
CREATE TABLE IF NOT EXISTS plans (plan_id int PRIMARY KEY, name text NOT NULL, price numeric NOT NULL);
CREATE TABLE IF NOT EXISTS users (user_id bigint PRIMARY KEY, name text NOT NULL, plan_id int NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS orders (order_id bigint NOT NULL, user_id bigint NOT NULL, amount numeric(10,2) NOT NULL, created_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (user_id, order_id));
GRANT ALL ON ALL TABLES IN SCHEMA public TO app;
ALTER TABLE plans OWNER TO app; ALTER TABLE users OWNER TO app; ALTER TABLE orders OWNER TO app;
`

// demoHash gives the first shards today's placement (shard i: remainder i
// of modulus shards) written out, and the spares no hash keys; nil without
// spares (the default says the same).
func demoHash(shards, spares int) []string {
	if spares == 0 {
		return nil
	}
	out := make([]string, shards+spares)
	for i := range out {
		out[i] = "[]"
		if i < shards {
			out[i] = fmt.Sprintf("[{modulus: %d, remainder: %d}]", shards, i)
		}
	}
	return out
}

// demoSplit is demoHash with the first shards each split in two, half of
// their keys going to a spare: the next placement the demo offers.
func demoSplit(shards, spares int) []string {
	out := demoHash(shards, spares)
	for i := 0; i < spares && i < shards; i++ {
		out[i] = fmt.Sprintf("[{modulus: %d, remainder: %d}]", 2*shards, i)
		out[shards+i] = fmt.Sprintf("[{modulus: %d, remainder: %d}]", 2*shards, shards+i)
	}
	return out
}

func writeDemoConfig(c *localpg.Cluster, name, listen, metrics string, hash []string) (string, error) {
	yaml := c.ConfigYAML(localpg.ConfigOptions{
		Listen: listen, MetricsListen: metrics, Hash: hash,
		Users: []localpg.ConfigUser{
			{Name: "app", Password: "app"},
			{Name: "admin", Password: "admin", Admin: true, ServerUser: "app", ServerPassword: "app"},
		},
		Sections: map[string]string{"db": "    two_phase_commit: true\n" +
			"    sharded_tables:\n" +
			"      - {table: users, column: user_id, type: int, function: hash}\n" +
			"      - {table: orders, column: user_id, type: int, function: hash}\n" +
			"    reference_tables: [plans]\n"},
	})
	path := filepath.Join(c.Dir, name)
	return path, os.WriteFile(path, []byte(yaml), 0o644)
}

// loadDemoData creates role, database and schema on every primary, then puts
// each user (and its orders) on the shard Postgres hash partitioning assigns.
func loadDemoData(ctx context.Context, c *localpg.Cluster, cfg *config.Config) error {
	fn, err := sharding.ForConfig(cfg, &cfg.Databases[0].ShardedTables[0])
	if err != nil {
		return err
	}
	const nUsers = 2000
	perShard := make([][]int64, len(c.Shards))
	for id := int64(1); id <= nUsers; id++ {
		s, err := fn.Shard(sharding.Key{Int: id})
		if err != nil {
			return err
		}
		perShard[s] = append(perShard[s], id)
	}
	for i, s := range c.Shards {
		p := s.Primary
		if err := p.Exec(ctx, "DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname='app') THEN CREATE ROLE app LOGIN PASSWORD 'app'; END IF; END$$; ALTER ROLE app REPLICATION"); err != nil {
			return err
		}
		var exists bool
		if err := p.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_database WHERE datname = 'app')").Scan(&exists); err != nil {
			return err
		}
		if !exists {
			if err := p.Exec(ctx, "CREATE DATABASE app OWNER app"); err != nil {
				return err
			}
		}
		conn, err := p.Connect(ctx, "app")
		if err != nil {
			return err
		}
		err = execAll(ctx, conn, []string{demoSchema,
			"INSERT INTO plans VALUES (1, 'free', 0), (2, 'pro', 10), (3, 'team', 50) ON CONFLICT DO NOTHING",
			"INSERT INTO users (user_id, name, plan_id) SELECT id, 'user ' || id, 1 + id % 3 FROM unnest($1::bigint[]) AS id ON CONFLICT DO NOTHING",
			"INSERT INTO orders (order_id, user_id, amount) SELECT n, id, (id * n) % 1000 + 0.99 FROM unnest($1::bigint[]) AS id, generate_series(1, 3) AS n ON CONFLICT DO NOTHING",
		}, perShard[i])
		conn.Close(ctx)
		if err != nil {
			return fmt.Errorf("%s: loading sample data: %w", s.Name, err)
		}
	}
	return c.WaitReplicated(ctx)
}

// execAll runs statements in order; those with $1 get ids.
func execAll(ctx context.Context, conn *pgx.Conn, stmts []string, ids []int64) error {
	for _, q := range stmts {
		var err error
		if strings.Contains(q, "$1") {
			_, err = conn.Exec(ctx, q, ids)
		} else {
			_, err = conn.Exec(ctx, q)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Package testenv starts real Postgres clusters (via topology/localpg) with a
// pgrouter instance in front, for integration tests and benchmarks. It is
// never imported by production code.
package testenv

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pgrouter/pgrouter/config"
	"github.com/pgrouter/pgrouter/proxy"
	"github.com/pgrouter/pgrouter/router"
	"github.com/pgrouter/pgrouter/topology/localpg"
)

// Env is a running cluster plus a pgrouter in front of it.
type Env struct {
	Cluster *localpg.Cluster
	Proxy   *proxy.Instance
	Config  *config.Config
	Path    string // config file
}

// Options shape the environment.
type Options struct {
	Shards, Replicas int
	Settings         map[string]string // extra postgresql.conf settings
	Sections         map[string]string // pgrouter config sections (see localpg.ConfigOptions)
	Users            []localpg.ConfigUser
	Log              io.Writer // pgrouter log output; default discard (PGROUTER_TEST_LOG=1: stderr)
	TLS              bool      // generate a self-signed certificate and enable client TLS
	Hash             []string  // per shard: its hash slots as YAML ("[]": a spare); nil = default placement
}

// DefaultUsers: app/app (scram), md5user/md5pw (md5), trusty (trust), admin/admin (admin);
// all log in to the shards as postgres.
func DefaultUsers(pgPassword string) []localpg.ConfigUser {
	return []localpg.ConfigUser{
		{Name: "app", Password: "app", ServerUser: "postgres", ServerPassword: pgPassword},
		{Name: "md5user", Password: "md5pw", Auth: "md5", ServerUser: "postgres", ServerPassword: pgPassword},
		{Name: "trusty", Password: "", Auth: "trust", ServerUser: "postgres", ServerPassword: pgPassword},
		{Name: "admin", Password: "admin", Admin: true, ServerUser: "postgres", ServerPassword: pgPassword},
	}
}

// Start brings up the cluster (database "app" created on every primary) and pgrouter.
func Start(ctx context.Context, o Options) (*Env, error) {
	if o.Shards == 0 {
		o.Shards = 1
	}
	c, err := localpg.Start(ctx, localpg.Options{Shards: o.Shards, Replicas: o.Replicas, Settings: o.Settings})
	if err != nil {
		return nil, err
	}
	e := &Env{Cluster: c}
	if err := e.init(ctx, o); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

func (e *Env) init(ctx context.Context, o Options) error {
	for _, s := range e.Cluster.Shards {
		if err := s.Primary.Exec(ctx, "CREATE DATABASE app"); err != nil {
			return err
		}
	}
	if err := e.Cluster.WaitReplicated(ctx); err != nil {
		return err
	}
	if o.TLS {
		cert, key, err := writeSelfSigned(e.Cluster.Dir)
		if err != nil {
			return err
		}
		if o.Sections == nil {
			o.Sections = map[string]string{}
		}
		o.Sections["tls"] = fmt.Sprintf("  cert_file: %s\n  key_file: %s", cert, key)
	}
	// Tests share two cores with Postgres, pgbench and the race detector: a
	// backend dial may be slow, and that must not read as a product failure.
	if o.Sections == nil {
		o.Sections = map[string]string{}
	}
	if !strings.Contains(o.Sections["pool"], "connect_timeout") {
		o.Sections["pool"] = strings.TrimRight("  connect_timeout: 30s\n"+o.Sections["pool"], "\n")
	}
	users := o.Users
	if users == nil {
		users = DefaultUsers(e.Cluster.Password)
	}
	yaml := e.Cluster.ConfigYAML(localpg.ConfigOptions{Listen: "127.0.0.1:0", MetricsListen: "127.0.0.1:0", Users: users, Sections: o.Sections, Hash: o.Hash})
	e.Path = filepath.Join(e.Cluster.Dir, "pgrouter.yaml")
	if err := os.WriteFile(e.Path, []byte(yaml), 0o600); err != nil {
		return err
	}
	cfg, err := config.Load(e.Path)
	if err != nil {
		return fmt.Errorf("generated config: %w\n%s", err, yaml)
	}
	e.Config = cfg
	w := o.Log
	if w == nil {
		w = io.Discard
		if os.Getenv("PGROUTER_TEST_LOG") != "" {
			w = os.Stderr
		}
	}
	log := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.Proxy, err = proxy.Start(ctx, cfg, log)
	return err
}

// ExecOnPrimaries runs sql (a schema, usually) in database db directly on
// every shard's primary; extra[i], if given, runs after it on shard i.
func (e *Env) ExecOnPrimaries(ctx context.Context, db, sql string, extra ...string) error {
	for i, s := range e.Cluster.Shards {
		c, err := s.Primary.Connect(ctx, db)
		if err != nil {
			return err
		}
		q := sql
		if i < len(extra) {
			q += ";" + extra[i]
		}
		_, err = c.Exec(ctx, q)
		c.Close(ctx)
		if err != nil {
			return fmt.Errorf("%s: %w", s.Name, err)
		}
	}
	return nil
}

// DSN is a client DSN through pgrouter.
func (e *Env) DSN(user, password, db string) string {
	return fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable", user, password, e.Proxy.Addr, db)
}

// Router is a router over database app of the environment's config: where
// keys belong, computed as pgrouter computes it.
func (e *Env) Router() (*router.Router, error) {
	return router.ForConfig(e.Config, &e.Config.Databases[0])
}

// AppDSN is the DSN of user app on database app.
func (e *Env) AppDSN() string { return e.DSN("app", "app", "app") }

// Close stops pgrouter and the cluster.
func (e *Env) Close() {
	if e.Proxy != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		e.Proxy.Close(ctx)
		cancel()
	}
	e.Cluster.Close()
}

// Main is the TestMain of a package that shares one environment: start it
// (then run setup, if any), run the tests, tear everything down. It returns
// the exit code for os.Exit.
func Main(m interface{ Run() int }, o Options, setup func(*Env) error) (*Env, func() int) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e, err := Start(ctx, o)
	if err == nil && setup != nil {
		if err = setup(e); err != nil {
			e.Close()
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "test environment:", err)
		return nil, func() int { return 1 }
	}
	return e, func() int {
		defer e.Close()
		return m.Run()
	}
}

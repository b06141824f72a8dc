package config

import (
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestFullExampleParsesWithDefaults(t *testing.T) {
	cfg, err := Load("../examples/pgrouter.yaml")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"path", cfg.Path, "../examples/pgrouter.yaml"},
		{"listen", cfg.Listen, "0.0.0.0:6432"},
		{"slow_query", cfg.Log.SlowQuery.D(), 500 * time.Millisecond},
		{"pool.min_idle", cfg.Pool.MinIdle, 2},
		{"pool.max_waiters default", cfg.Pool.MaxWaiters, 10000},
		{"pool.idle_timeout default", cfg.Pool.IdleTimeout.D(), 10 * time.Minute},
		{"pool.prepared_cache default", cfg.Pool.PreparedCache, 500},
		{"health.timeout default", cfg.Health.Timeout.D(), time.Second},
		{"ryw", cfg.Replicas.RYW(), true},
		{"shards", cfg.ShardNames(), []string{"s0", "s1"}},
		{"short-form primary name", cfg.Shards[0].Primary.Name, "s0-primary"},
		{"short-form primary addr", cfg.Shards[0].Primary.Addr, "127.0.0.1:5432"},
		{"replica default name", cfg.Shards[0].Replicas[0].Name, "s0-replica1"},
		{"replica default weight", cfg.Shards[0].Replicas[0].Weight, 1},
		{"long-form replica", cfg.Shards[1].Replicas[0].Addr, "127.0.0.1:5435"},
		{"shard strategy inherited", cfg.Shards[1].Strategy, "round_robin"},
		{"app auth", cfg.User("app").Auth, "scram-sha-256"},
		{"app password default from ${:-}", cfg.User("app").BackendPassword(), "app-secret"},
		{"app default_role", cfg.User("app").DefaultRole, "auto"},
		{"admin pool size", cfg.PoolSize(cfg.User("admin")), 5},
		{"app pool size", cfg.PoolSize(cfg.User("app")), 20},
		{"admin", cfg.User("admin").Admin, true},
		{"db dbname", cfg.Database("app").Dbname, "app"},
		{"users table", cfg.Database("app").Table("USERS").Function, "hash"},
		{"events ranges", len(cfg.Database("app").Table("events").Ranges), 2},
		{"accounts default", cfg.Database("app").Table("accounts").Default, "s0"},
		{"plans reference", cfg.Database("app").IsReferenceTable("plans"), true},
	}
	for _, c := range checks {
		if !equal(c.got, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestMinimalExampleDefaults(t *testing.T) {
	cfg, err := Load("../examples/minimal.yaml")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := Config{
		Listen:   "127.0.0.1:6432",
		Metrics:  Metrics{Listen: DefaultMetricsListen},
		Log:      Log{Format: "json", Level: "info", SlowQuery: Duration(time.Second)},
		Pool:     Pool{Mode: "transaction", Size: 20, AcquireTimeout: Duration(5 * time.Second), MaxWaiters: 10000, IdleTimeout: Duration(10 * time.Minute), MaxLifetime: Duration(time.Hour), HealthCheckIdle: Duration(30 * time.Second), ConnectTimeout: Duration(5 * time.Second), LoginTimeout: Duration(10 * time.Second), ShutdownTimeout: Duration(30 * time.Second), PreparedCache: 500},
		Replicas: Replicas{Strategy: "round_robin", MaxLagBytes: 16 << 20, MaxLag: Duration(10 * time.Second), LagCheckInterval: Duration(500 * time.Millisecond), Fallback: "primary"},
		Health:   Health{Interval: Duration(time.Second), Timeout: Duration(time.Second), FailThreshold: 2, BanDuration: Duration(10 * time.Second), BreakerCooldown: Duration(time.Second)},
		Limits:   Limits{MaxMessageSize: DefaultMaxMessageSize, AuthFailures: 20, AuthFailureWindow: Duration(time.Minute), MaxClientsPerUser: 5000, MaxClientsPerDatabase: 10000, AdminReserved: 5, UserQueryBurst: 1, QueryRateWait: Duration(time.Second)},
	}
	if cfg.Limits != want.Limits {
		t.Errorf("limits defaults: got %+v, want %+v", cfg.Limits, want.Limits)
	}
	if cfg.Listen != want.Listen || cfg.Metrics != want.Metrics || cfg.Log != want.Log || cfg.Pool != want.Pool || cfg.Health != want.Health {
		t.Errorf("top-level defaults:\n got %+v %+v %+v %+v %+v\nwant %+v %+v %+v %+v %+v",
			cfg.Listen, cfg.Metrics, cfg.Log, cfg.Pool, cfg.Health, want.Listen, want.Metrics, want.Log, want.Pool, want.Health)
	}
	r := cfg.Replicas
	r.ReadYourWrites = nil
	if r != want.Replicas || !cfg.Replicas.RYW() {
		t.Errorf("replicas defaults: got %+v ryw=%v", r, cfg.Replicas.RYW())
	}
	db := cfg.Database("app")
	if db == nil || db.Dbname != "app" || db.UnlistedTables != "shard:s0" || db.CrossShard != "allow" || db.ReferenceWrites != "refuse" {
		t.Errorf("database defaults: %+v", db)
	}
	if mode, shard := db.Unlisted(); mode != "shard" || shard != "s0" {
		t.Errorf("Unlisted() = %q, %q", mode, shard)
	}
	u := cfg.User("app")
	if u.Auth != "scram-sha-256" || u.DefaultRole != "auto" || u.BackendUser() != "app" {
		t.Errorf("user defaults: %+v", u)
	}
}

// TestExamplesLoad keeps every shipped example valid.
func TestExamplesLoad(t *testing.T) {
	files, err := filepath.Glob("../examples/*.yaml")
	if err != nil || len(files) < 2 {
		t.Fatalf("examples: %v %v", files, err)
	}
	for _, f := range files {
		if _, err := Load(f); err != nil {
			t.Errorf("%s:\n%v", f, err)
		}
	}
}

func TestUnlistedDefaultWithTwoShards(t *testing.T) {
	cfg := mustParse(t, baseTwoShards)
	if got := cfg.Databases[0].UnlistedTables; got != "error" {
		t.Errorf("unlisted_tables = %q, want error", got)
	}
}

func TestExplicitZeroKeepsZero(t *testing.T) {
	cfg := mustParse(t, minimal+"log: {slow_query: 0}\nreplicas: {max_lag: 0s, max_lag_bytes: 0, read_your_writes: false}\n")
	if cfg.Log.SlowQuery != 0 || cfg.Replicas.MaxLag != 0 || cfg.Replicas.MaxLagBytes != 0 || cfg.Replicas.RYW() {
		t.Errorf("explicit zeros replaced: log=%+v replicas=%+v ryw=%v", cfg.Log, cfg.Replicas, cfg.Replicas.RYW())
	}
}

func TestCodeBuiltConfig(t *testing.T) {
	cfg := &Config{
		Users:     []User{{Name: "u", Password: "p"}},
		Shards:    []Shard{{Name: "a", Primary: Node{Addr: "127.0.0.1:1"}}, {Name: "b", Primary: Node{Addr: "127.0.0.1:2"}}},
		Databases: []Database{{Name: "d", ShardedTables: []ShardedTable{{Table: "t", Column: "id", Type: "int"}}}},
	}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if cfg.Pool.Size != 20 || cfg.Shards[1].Primary.Name != "b-primary" || cfg.Databases[0].ShardedTables[0].Function != "hash" {
		t.Errorf("defaults not applied: %+v", cfg)
	}
	cfg.Shards[1].Name = "a"
	err := cfg.Validate()
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 1 || errs[0].Key != "shards[1].name" || errs[0].Line != 0 {
		t.Fatalf("want one error at shards[1].name, got %v", err)
	}
	if got := errs[0].Error(); !strings.HasPrefix(got, "shards[1].name: duplicate shard name \"a\"") {
		t.Errorf("Error() = %q", got)
	}
}

func TestLoadMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.yaml")
	_, err := Load(path)
	var errs Errors
	if !errors.As(err, &errs) || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("want Errors wrapping fs.ErrNotExist, got %#v", err)
	}
	if want := path + ": cannot open: no such file or directory"; err.Error() != want {
		t.Errorf("got %q, want %q", err.Error(), want)
	}
}

func TestAccessors(t *testing.T) {
	cfg := mustParse(t, baseTwoShards)
	if cfg.ShardIndex("s1") != 1 || cfg.ShardIndex("zz") != -1 {
		t.Errorf("ShardIndex wrong")
	}
	if cfg.User("nobody") != nil || cfg.Database("nope") != nil {
		t.Errorf("lookups of missing names must be nil")
	}
	u := User{Name: "a", Password: "p", ServerUser: "b", ServerPassword: "q"}
	if u.BackendUser() != "b" || u.BackendPassword() != "q" {
		t.Errorf("backend credentials: %q %q", u.BackendUser(), u.BackendPassword())
	}
	verifier := "SCRAM-SHA-256$4096:c2FsdA==$c3RvcmVk:c2VydmVy"
	for s, want := range map[string]bool{verifier: true, "SCRAM-SHA-256$": false, "secret": false, "md5abc": false} {
		if IsSCRAMVerifier(s) != want {
			t.Errorf("IsSCRAMVerifier(%q) != %v", s, want)
		}
	}
}

func mustParse(t *testing.T, yml string) *Config {
	t.Helper()
	cfg, err := Parse([]byte(yml), "test.yaml")
	if err != nil {
		t.Fatalf("Parse:\n%v\n--- input:\n%s", err, yml)
	}
	return cfg
}

func equal(a, b any) bool {
	as, aok := a.([]string)
	bs, bok := b.([]string)
	if aok && bok {
		return strings.Join(as, ",") == strings.Join(bs, ",")
	}
	return a == b
}

const minimal = `users:
  - name: app
    password: pw
shards:
  - name: s0
    primary: 127.0.0.1:5432
databases:
  - name: app
`

const baseTwoShards = `users:
  - name: app
    password: pw
shards:
  - name: s0
    primary: 127.0.0.1:5432
  - name: s1
    primary: 127.0.0.1:5433
databases:
  - name: app
`

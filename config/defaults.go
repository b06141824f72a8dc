package config

import (
	"fmt"
	"path/filepath"
	"time"
)

// Default values, as documented in types.go and docs/CONFIG.md.
const (
	DefaultListen         = "127.0.0.1:6432"
	DefaultMetricsListen  = "127.0.0.1:9930"
	DefaultDirectoryQuery = "SELECT shard FROM pgrouter_directory WHERE key = $1"
	// DefaultDirectoryAssignQuery records a mapping chosen by auto_assign;
	// concurrent assigners agree because the lookup is re-read after it.
	DefaultDirectoryAssignQuery = "INSERT INTO pgrouter_directory (key, shard) VALUES ($1, $2) ON CONFLICT DO NOTHING"
	// DefaultDirectoryMoveQuery points a key at its new shard when a
	// reshard moves it ($1 key, $2 shard name).
	DefaultDirectoryMoveQuery = "UPDATE pgrouter_directory SET shard = $2 WHERE key = $1"
	defaultMaxLagBytes        = 16 << 20
	// DefaultMaxMessageSize bounds one client message after login: large
	// enough for any sane Bind or COPY row, small enough that a few hostile
	// clients cannot exhaust memory (Postgres's own bound is 1 GB).
	DefaultMaxMessageSize = 256 << 20
	// MaxMessageSizeLimit is Postgres's MaxAllocSize: no backend accepts more.
	MaxMessageSizeLimit = 1<<30 - 1
)

// ApplyDefaults fills in every setting left at its zero value. It is for
// configs built in code; Load and Parse already apply defaults, and there a
// key written explicitly as 0 keeps its 0 (e.g. "max_lag: 0" = no bound).
func (c *Config) ApplyDefaults() { c.setDefaults(nil) }

// defaulter sets a default when the key was not written in the file. Strings
// count as unwritten when empty, so "${VAR:-}" falls back to the default.
type defaulter struct{ ix *index }

func (d defaulter) str(key string, p *string, v string) {
	if *p == "" {
		*p = v
	}
}

func (d defaulter) int(key string, p *int, v int) {
	if *p == 0 && !d.ix.has(key) {
		*p = v
	}
}

func (d defaulter) int64(key string, p *int64, v int64) {
	if *p == 0 && !d.ix.has(key) {
		*p = v
	}
}

func (d defaulter) dur(key string, p *Duration, v time.Duration) {
	if *p == 0 && !d.ix.has(key) {
		*p = Duration(v)
	}
}

func (c *Config) setDefaults(ix *index) {
	d := defaulter{ix}
	d.str("listen", &c.Listen, DefaultListen)
	d.str("metrics.listen", &c.Metrics.Listen, DefaultMetricsListen)
	d.str("log.format", &c.Log.Format, "json")
	d.str("log.level", &c.Log.Level, "info")
	d.str("data_dir", &c.DataDir, filepath.Join(filepath.Dir(c.Path), "pgrouter-data"))
	d.dur("log.slow_query", &c.Log.SlowQuery, time.Second)
	c.Pool.setDefaults(d)
	d.int("limits.max_message_size", &c.Limits.MaxMessageSize, DefaultMaxMessageSize)
	d.int("limits.auth_failures", &c.Limits.AuthFailures, 20)
	d.dur("limits.auth_failure_window", &c.Limits.AuthFailureWindow, time.Minute)
	d.dur("timeouts.idle_in_transaction", &c.Timeouts.IdleInTransaction, 10*time.Minute)
	if c.Routing.AllowShardHints == nil {
		t := true
		c.Routing.AllowShardHints = &t
	}
	c.Replicas.setDefaults(d)
	d.dur("cluster.lease_ttl", &c.Cluster.LeaseTTL, 10*time.Second)
	d.dur("cluster.barrier_timeout", &c.Cluster.BarrierTimeout, 45*time.Second)
	d.dur("health.interval", &c.Health.Interval, time.Second)
	d.dur("health.timeout", &c.Health.Timeout, time.Second)
	d.int("health.fail_threshold", &c.Health.FailThreshold, 2)
	d.dur("health.ban_duration", &c.Health.BanDuration, 10*time.Second)
	d.dur("health.breaker_cooldown", &c.Health.BreakerCooldown, time.Second)
	d.str("tls.mode", &c.TLS.Mode, "allow")
	d.str("backend_tls.sslmode", &c.BackendTLS.SSLMode, "disable")
	d.int("limits.max_clients_per_user", &c.Limits.MaxClientsPerUser, 5000)
	d.int("limits.max_clients_per_database", &c.Limits.MaxClientsPerDatabase, 10000)
	d.int("limits.admin_reserved", &c.Limits.AdminReserved, 5)
	d.int("limits.user_query_burst", &c.Limits.UserQueryBurst, max(c.Limits.UserQueryRate, 1))
	d.dur("limits.query_rate_wait", &c.Limits.QueryRateWait, time.Second)
	for i := range c.Users {
		u := &c.Users[i]
		d.str("", &u.Auth, "scram-sha-256")
		d.str("", &u.DefaultRole, "auto")
	}
	for i := range c.Shards {
		c.Shards[i].setDefaults(d, idx("shards", i), c.Replicas.Strategy)
	}
	for i := range c.Databases {
		c.Databases[i].setDefaults(d, idx("databases", i), c.Shards)
	}
}

func (p *Pool) setDefaults(d defaulter) {
	d.str("pool.mode", &p.Mode, "transaction")
	d.int("pool.size", &p.Size, 20)
	d.dur("pool.acquire_timeout", &p.AcquireTimeout, 5*time.Second)
	d.int("pool.max_waiters", &p.MaxWaiters, 10000)
	d.dur("pool.idle_timeout", &p.IdleTimeout, 10*time.Minute)
	d.dur("pool.max_lifetime", &p.MaxLifetime, time.Hour)
	d.dur("pool.health_check_idle", &p.HealthCheckIdle, 30*time.Second)
	d.dur("pool.connect_timeout", &p.ConnectTimeout, 5*time.Second)
	d.dur("pool.login_timeout", &p.LoginTimeout, 10*time.Second)
	d.dur("pool.shutdown_timeout", &p.ShutdownTimeout, 30*time.Second)
	d.int("pool.prepared_cache", &p.PreparedCache, 500)
}

func (r *Replicas) setDefaults(d defaulter) {
	d.str("replicas.strategy", &r.Strategy, "round_robin")
	d.int64("replicas.max_lag_bytes", &r.MaxLagBytes, defaultMaxLagBytes)
	d.dur("replicas.max_lag", &r.MaxLag, 10*time.Second)
	d.dur("replicas.lag_check_interval", &r.LagCheckInterval, 500*time.Millisecond)
	d.str("replicas.fallback", &r.Fallback, "primary")
	if r.ReadYourWrites == nil {
		t := true
		r.ReadYourWrites = &t
	}
}

func (s *Shard) setDefaults(d defaulter, key, strategy string) {
	d.str(key+".strategy", &s.Strategy, strategy)
	if s.Name == "" {
		return // reported by validation; node names would be "-primary"
	}
	d.str(key+".primary.name", &s.Primary.Name, s.Name+"-primary")
	d.int(key+".primary.weight", &s.Primary.Weight, 1)
	for j := range s.Replicas {
		r := &s.Replicas[j]
		rk := idx(key+".replicas", j)
		d.str(rk+".name", &r.Name, fmt.Sprintf("%s-replica%d", s.Name, j+1))
		d.int(rk+".weight", &r.Weight, 1)
	}
}

func (db *Database) setDefaults(d defaulter, key string, shards []Shard) {
	d.str(key+".dbname", &db.Dbname, db.Name)
	if len(shards) == 1 && shards[0].Name != "" {
		d.str(key+".unlisted_tables", &db.UnlistedTables, "shard:"+shards[0].Name)
	} else {
		d.str(key+".unlisted_tables", &db.UnlistedTables, "error")
	}
	d.str(key+".cross_shard", &db.CrossShard, "allow")
	d.str(key+".reference_writes", &db.ReferenceWrites, "refuse")
	for i := range db.ShardedTables {
		t := &db.ShardedTables[i]
		tk := idx(key+".sharded_tables", i)
		d.str(tk+".function", &t.Function, "hash")
		if dir := t.Directory; dir != nil {
			d.str(tk+".directory.dbname", &dir.Dbname, db.Dbname)
			d.str(tk+".directory.query", &dir.Query, DefaultDirectoryQuery)
			d.str(tk+".directory.assign_query", &dir.AssignQuery, DefaultDirectoryAssignQuery)
			d.str(tk+".directory.move_query", &dir.MoveQuery, DefaultDirectoryMoveQuery)
			d.int(tk+".directory.cache_size", &dir.CacheSize, 100000)
			d.dur(tk+".directory.cache_ttl", &dir.CacheTTL, 60*time.Second)
			d.dur(tk+".directory.timeout", &dir.Timeout, 5*time.Second)
			d.int(tk+".directory.pool_size", &dir.PoolSize, 4)
		}
	}
}

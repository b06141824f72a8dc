package config

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// validate runs every semantic check; each problem is recorded with its key
// path (and so its line) and checking goes on, so one run reports them all.
func (c *checker) validate(cfg *Config) {
	c.hostPort("listen", cfg.Listen, true)
	if cfg.Metrics.Listen != "off" {
		c.hostPort("metrics.listen", cfg.Metrics.Listen, true)
	}
	if (cfg.TLS.CertFile == "") != (cfg.TLS.KeyFile == "") {
		c.errf("tls", "cert_file and key_file must be given together")
	}
	c.oneOf("log.format", cfg.Log.Format, "json", "text")
	c.oneOf("log.level", cfg.Log.Level, "debug", "info", "warn", "error")
	c.nonNegative("log.slow_query", cfg.Log.SlowQuery)
	c.validatePool(&cfg.Pool)
	c.validateLimits(&cfg.Limits)
	c.nonNegative("timeouts.idle_in_transaction", cfg.Timeouts.IdleInTransaction)
	c.nonNegative("timeouts.query", cfg.Timeouts.Query)
	c.validateReplicas(&cfg.Replicas)
	c.positive("health.interval", cfg.Health.Interval)
	c.positive("health.timeout", cfg.Health.Timeout)
	c.atLeast("health.fail_threshold", cfg.Health.FailThreshold, 1)
	c.positive("health.ban_duration", cfg.Health.BanDuration)
	c.positive("health.breaker_cooldown", cfg.Health.BreakerCooldown)
	if cfg.TLS.Mode != "" && c.oneOf("tls.mode", cfg.TLS.Mode, "allow", "require") && cfg.TLS.Mode == "require" && cfg.TLS.CertFile == "" {
		c.errf("tls.mode", "tls.mode require needs cert_file and key_file")
	}
	c.validateBackendTLS("backend_tls", &cfg.BackendTLS)
	c.validateCluster(&cfg.Cluster)
	for i := range cfg.Shards {
		if t := cfg.Shards[i].TLS; t != nil {
			c.validateBackendTLS(idx("shards", i)+".tls", t)
		}
		if t := cfg.BackendTLSFor(cfg.Shards[i].Name); strings.HasPrefix(t.SSLMode, "verify-") && t.CAFile == "" {
			c.errf(idx("shards", i)+".tls.ca_file", "sslmode %s needs a ca_file (in backend_tls or the shard's tls)", t.SSLMode)
		}
	}
	c.validateUsers(cfg)
	c.validateShards(cfg)
	c.validateHash(cfg)
	c.validateDatabases(cfg)
}

func (c *checker) validateBackendTLS(key string, t *BackendTLS) {
	if t.SSLMode != "" {
		c.oneOf(key+".sslmode", t.SSLMode, "disable", "require", "verify-ca", "verify-full")
	}
	if t.CAFile != "" {
		if _, err := os.Stat(t.CAFile); err != nil {
			c.errf(key+".ca_file", "%v", err)
		}
	}
}

func (c *checker) validateLimits(l *Limits) {
	if l.MaxMessageSize < 1024 || l.MaxMessageSize > MaxMessageSizeLimit {
		c.errf("limits.max_message_size", "must be between 1024 and %d bytes (Postgres's limit), got %d", MaxMessageSizeLimit, l.MaxMessageSize)
	}
	c.atLeast("limits.auth_failures", l.AuthFailures, 0)
	if l.AuthFailures > 0 {
		c.positive("limits.auth_failure_window", l.AuthFailureWindow)
	}
	c.atLeast("limits.max_clients_per_user", l.MaxClientsPerUser, 0)
	c.atLeast("limits.max_clients_per_database", l.MaxClientsPerDatabase, 0)
	c.atLeast("limits.admin_reserved", l.AdminReserved, 0)
	c.atLeast("limits.user_query_rate", l.UserQueryRate, 0)
	c.atLeast("limits.user_query_burst", l.UserQueryBurst, 1)
	c.nonNegative("limits.query_rate_wait", l.QueryRateWait)
}

func (c *checker) validatePool(p *Pool) {
	c.oneOf("pool.mode", p.Mode, "transaction", "session")
	c.atLeast("pool.size", p.Size, 1)
	c.atLeast("pool.min_idle", p.MinIdle, 0)
	if p.MinIdle > p.Size && p.Size >= 1 {
		c.errf("pool.min_idle", "min_idle (%d) must not exceed size (%d)", p.MinIdle, p.Size)
	}
	c.positive("pool.acquire_timeout", p.AcquireTimeout)
	c.atLeast("pool.max_waiters", p.MaxWaiters, 0)
	c.positive("pool.idle_timeout", p.IdleTimeout)
	c.positive("pool.max_lifetime", p.MaxLifetime)
	c.positive("pool.health_check_idle", p.HealthCheckIdle)
	c.positive("pool.connect_timeout", p.ConnectTimeout)
	c.atLeast("pool.max_clients", p.MaxClients, 0)
	c.positive("pool.login_timeout", p.LoginTimeout)
	c.positive("pool.shutdown_timeout", p.ShutdownTimeout)
	c.atLeast("pool.prepared_cache", p.PreparedCache, 0)
}

var strategies = []string{"round_robin", "random", "least_conn", "weighted"}

func (c *checker) validateReplicas(r *Replicas) {
	c.oneOf("replicas.strategy", r.Strategy, strategies...)
	if r.MaxLagBytes < 0 {
		c.errf("replicas.max_lag_bytes", "must be ≥ 0 (0 = no byte bound), got %d", r.MaxLagBytes)
	}
	c.nonNegative("replicas.max_lag", r.MaxLag)
	c.positive("replicas.lag_check_interval", r.LagCheckInterval)
	c.oneOf("replicas.fallback", r.Fallback, "primary", "error")
}

func (c *checker) validateUsers(cfg *Config) {
	if len(cfg.Users) == 0 {
		c.errf("users", "at least one user is required")
	}
	seen := c.names("user name")
	for i := range cfg.Users {
		u := &cfg.Users[i]
		key := idx("users", i)
		if c.required(key+".name", u.Name) {
			seen.add(key+".name", u.Name)
		}
		c.oneOf(key+".auth", u.Auth, "scram-sha-256", "md5", "trust")
		c.oneOf(key+".default_role", u.DefaultRole, "auto", "primary", "replica")
		c.atLeast(key+".max_clients", u.MaxClients, 0)
		c.atLeast(key+".query_rate", u.QueryRate, 0)
		if u.PoolSize < 0 || (u.PoolSize > 0 && u.PoolSize < cfg.Pool.MinIdle) {
			c.errf(key+".pool_size", "must be ≥ 1 and ≥ pool.min_idle (%d), or 0 to use pool.size; got %d", cfg.Pool.MinIdle, u.PoolSize)
		}
		verifier := IsSCRAMVerifier(u.Password)
		switch {
		case u.Auth != "trust" && u.Password == "":
			c.errf(key+".password", "auth %s needs a password", u.Auth)
		case u.Auth == "md5" && verifier:
			c.errf(key+".password", "a SCRAM verifier cannot check md5 logins; give the plain password or use auth: scram-sha-256")
		}
		if verifier && u.ServerPassword == "" {
			c.errf(key+".server_password", "required when password is a SCRAM verifier: pgrouter cannot log in to the shards with a verifier")
		}
	}
}

func (c *checker) validateShards(cfg *Config) {
	if len(cfg.Shards) == 0 {
		c.errf("shards", "at least one shard is required")
	}
	shardNames, nodeNames, addrs := c.names("shard name"), c.names("node name"), c.names("primary address")
	for i := range cfg.Shards {
		s := &cfg.Shards[i]
		key := idx("shards", i)
		nodes := nodeNames
		if !c.required(key+".name", s.Name) || !c.labelName(key+".name", s.Name) ||
			!shardNames.add(key+".name", s.Name) {
			// Default node names derive from the shard name: checking them
			// against the others would only repeat this error.
			nodes = c.names("node name")
		}
		if s.Strategy != cfg.Replicas.Strategy {
			c.oneOf(key+".strategy", s.Strategy, strategies...)
		}
		c.validateNode(key+".primary", &s.Primary, nodes)
		// Two shards on one server would hold the same rows twice.
		if s.Primary.Addr != "" {
			addrs.add(key+".primary", s.Primary.Addr)
		}
		for j := range s.Replicas {
			c.validateNode(idx(key+".replicas", j), &s.Replicas[j], nodes)
		}
	}
}

func (c *checker) validateNode(key string, n *Node, names nameSet) {
	if n.Addr == "" {
		c.errf(key+".addr", "address is required (host:port)")
	} else {
		c.hostPort(key+".addr", n.Addr, false)
	}
	if n.Name != "" && c.labelName(key+".name", n.Name) {
		names.add(key+".name", n.Name)
	}
	c.atLeast(key+".weight", n.Weight, 1)
}

// --- small reusable checks ---

func (c *checker) required(key, val string) bool {
	if val == "" {
		c.errf(key, "is required")
		return false
	}
	return true
}

func (c *checker) oneOf(key, val string, allowed ...string) bool {
	for _, a := range allowed {
		if val == a {
			return true
		}
	}
	c.errf(key, "invalid value %q: must be one of %s", val, strings.Join(allowed, ", "))
	return false
}

// labelName keeps shard and node names usable as metric labels and in
// "shard:NAME" references.
func (c *checker) labelName(key, name string) bool {
	for _, r := range name {
		if !(r == '_' || r == '-' || r == '.' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			c.errf(key, "invalid name %q: use letters, digits, '_', '-' and '.'", name)
			return false
		}
	}
	return true
}

// hostPort checks "host:port". Listen addresses may omit the host (":6432"
// listens on all interfaces); backend addresses may not.
func (c *checker) hostPort(key, addr string, listen bool) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		c.errf(key, "invalid address %q: want host:port", addr)
		return
	}
	if host == "" && !listen {
		c.errf(key, "invalid address %q: the host is missing", addr)
		return
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 || (p == 0 && !listen) {
		c.errf(key, "invalid address %q: the port must be a number from 1 to 65535", addr)
	}
}

func (c *checker) atLeast(key string, v, min int) {
	if v < min {
		c.errf(key, "must be ≥ %d, got %d", min, v)
	}
}

func (c *checker) positive(key string, d Duration) {
	if d <= 0 {
		c.errf(key, "must be a positive duration, got %s", d)
	}
}

func (c *checker) nonNegative(key string, d Duration) {
	if d < 0 {
		c.errf(key, "must not be negative, got %s", d)
	}
}

// nameSet reports a name used twice, pointing at its first use.
type nameSet struct {
	c     *checker
	what  string
	first map[string]string // name → key path of its first use
}

func (c *checker) names(what string) nameSet {
	return nameSet{c: c, what: what, first: map[string]string{}}
}

// add records a use of name and reports whether it was the first.
func (s nameSet) add(key, name string) bool {
	if prev, ok := s.first[name]; ok {
		s.c.errf(key, "duplicate %s %q (first at %s)", s.what, name, s.c.where(prev))
		return false
	}
	s.first[name] = key
	return true
}

// where describes a key path's location for "first at …" messages.
func (c *checker) where(key string) string {
	if line := c.ix.line(key); line > 0 {
		return fmt.Sprintf("line %d", line)
	}
	return key
}

func (c *checker) validateCluster(cl *Cluster) {
	if cl.LeaseTTL.D() < time.Second {
		c.errf("cluster.lease_ttl", "must be at least 1s (etcd leases count whole seconds)")
	}
	c.positive("cluster.barrier_timeout", cl.BarrierTimeout)
	if cl.PoolBudget < 0 {
		c.errf("cluster.pool_budget", "must not be negative (0 = no fleet budget)")
	}
	if cl.Fence && cl.PoolBudget == 0 {
		c.errf("cluster.fence", "guards cluster.pool_budget, which is not set: set both, or neither")
	}
}

package config

import "time"

// Config is the whole pgrouter configuration file, after defaults are applied.
// Every field documented here is described for users in docs/CONFIG.md.
type Config struct {
	Listen    string     `yaml:"listen"`    // client listen address, default 127.0.0.1:6432
	Metrics   Metrics    `yaml:"metrics"`   // Prometheus endpoint
	TLS       TLS        `yaml:"tls"`       // client-side TLS; empty = no TLS ('N' to SSLRequest)
	Log       Log        `yaml:"log"`       // logging
	Pool      Pool       `yaml:"pool"`      // backend pool settings (per node, user, database)
	Replicas  Replicas   `yaml:"replicas"`  // read/write split and lag bounds
	Health    Health     `yaml:"health"`    // node health checks and bans
	Users     []User     `yaml:"users"`     // who may log in
	Shards    []Shard    `yaml:"shards"`    // ordered; by default shard i is hash REMAINDER i of MODULUS len(shards)
	Databases []Database `yaml:"databases"` // logical databases clients connect to
	Limits    Limits     `yaml:"limits"`    // what clients may cost: message sizes, failed logins, client and query rate limits
	// BackendTLS secures pgrouter's own connections to the shards (pools
	// and health checks); a shard's tls overrides it.
	BackendTLS BackendTLS `yaml:"backend_tls"`
	// DataDir holds pgrouter's durable state: the two-phase commit decision
	// log. Default: pgrouter-data next to the config file.
	DataDir string `yaml:"data_dir"`

	// Routing and Timeouts: the hardening of issue 12 (hints, server-side timeouts).
	Routing  Routing  `yaml:"routing"`  // what clients may decide about routing
	Timeouts Timeouts `yaml:"timeouts"` // server-side limits on a client session

	// Cluster configures a fleet of pgrouters sharing this config through
	// etcd (package fleet); a single pgrouter on a file ignores it.
	Cluster Cluster `yaml:"cluster"`

	// Path is the file this config was read from ("" when built in code).
	Path string `yaml:"-"`
}

// Cluster configures a fleet of pgrouters (serve --config etcd://…).
type Cluster struct {
	// LeaseTTL is how long a member stays listed after it stops renewing
	// its lease (crash, partition); its in-doubt two-phase commits are
	// recovered by another member after that.
	LeaseTTL Duration `yaml:"lease_ttl"` // default 10s
	// PoolBudget is the most backends the whole fleet may open per (node,
	// user, database); each live member gets an equal share. 0 = no budget:
	// each member uses its pool size.
	PoolBudget int `yaml:"pool_budget"`
	// Fence makes a member that could not renew its lease for most of
	// lease_ttl close every backend (and refuse new ones) until it renews:
	// then the survivors, which take an expired member's share, never push
	// a node past pool_budget. The price: when etcd is down for everyone,
	// every member fences too. false = keep serving with the share held
	// (a partitioned member may then exceed the budget by its share).
	Fence bool `yaml:"fence"` // default false
	// BarrierTimeout bounds a fleet-wide operation (PAUSE, RESUME, RELOAD):
	// members that did not acknowledge by then are named in the error.
	BarrierTimeout Duration `yaml:"barrier_timeout"` // default 45s
}

// Routing configures what clients may decide about routing.
type Routing struct {
	// AllowShardHints lets clients choose a shard (/* pgrouter: shard=… */,
	// /* pgrouter: key=… */, SET pgrouter.shard) for statements without a
	// shard key; a choice that contradicts a write's key is refused anyway.
	AllowShardHints *bool `yaml:"allow_shard_hints"` // default true
}

// Timeouts are server-side limits on a client session (0 = off).
type Timeouts struct {
	// IdleInTransaction ends a client idle inside a transaction longer than
	// this (FATAL 25P03), like Postgres's idle_in_transaction_session_timeout.
	IdleInTransaction Duration `yaml:"idle_in_transaction"` // default 10m
	// Query bounds how long a backend may stay silent while a statement is in
	// flight; the client gets 57014 and the backend is discarded.
	Query Duration `yaml:"query"` // default 0 (off)
}

// Metrics configures the Prometheus /metrics HTTP endpoint.
type Metrics struct {
	Listen string `yaml:"listen"` // default 127.0.0.1:9930; "off" disables
	PProf  bool   `yaml:"pprof"`  // serve /debug/pprof/ on the metrics listener, default false (no authentication there)
}

// Limits bounds what clients can make pgrouter spend. Messages before
// login have fixed limits, as in Postgres (startup packet 10000 bytes,
// authentication messages 65535 bytes). The client and query rate limits
// protect pgrouter and the shards from overload.
type Limits struct {
	MaxMessageSize    int      `yaml:"max_message_size"`    // bytes of one client message after login, default 256 MiB
	AuthFailures      int      `yaml:"auth_failures"`       // failed logins per source address and window before refusing it, default 20; 0 = off
	AuthFailureWindow Duration `yaml:"auth_failure_window"` // the window, default 1m

	// Overload protection (proxy/limits.go); on but generous, 0 = off.
	MaxClientsPerUser     int      `yaml:"max_clients_per_user"`     // logged-in clients per user, default 5000 → 53300
	MaxClientsPerDatabase int      `yaml:"max_clients_per_database"` // logged-in clients per database, default 10000 → 53300
	AdminReserved         int      `yaml:"admin_reserved"`           // admin console clients allowed beyond pool.max_clients, default 5
	UserQueryRate         int      `yaml:"user_query_rate"`          // statements per second per user outside transactions, default 0 = off
	UserQueryBurst        int      `yaml:"user_query_burst"`         // token bucket size, default = user_query_rate
	QueryRateWait         Duration `yaml:"query_rate_wait"`          // longest delay before refusing with 53400, default 1s
}

// TLS holds the server certificate pgrouter presents to clients.
type TLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	Mode     string `yaml:"mode"` // allow (default): TLS when the client asks | require: refuse plaintext clients
}

// Log configures log/slog output.
type Log struct {
	Format    string   `yaml:"format"`     // json (default) | text
	Level     string   `yaml:"level"`      // debug | info (default) | warn | error
	SlowQuery Duration `yaml:"slow_query"` // log queries slower than this; 0 = off (default 1s)
}

// Pool configures backend connection pools. One pool exists per (node, user, database).
type Pool struct {
	Mode            string   `yaml:"mode"`              // transaction (default) | session
	Size            int      `yaml:"size"`              // max backends per pool, default 20
	MinIdle         int      `yaml:"min_idle"`          // kept open when idle, default 0
	AcquireTimeout  Duration `yaml:"acquire_timeout"`   // wait for a backend, default 5s → 53300
	MaxWaiters      int      `yaml:"max_waiters"`       // bounded wait queue per pool, default 10000
	IdleTimeout     Duration `yaml:"idle_timeout"`      // close idle backends after, default 10m
	MaxLifetime     Duration `yaml:"max_lifetime"`      // close backends older than, default 1h
	HealthCheckIdle Duration `yaml:"health_check_idle"` // ping a backend idle longer than this before reuse, default 30s
	ConnectTimeout  Duration `yaml:"connect_timeout"`   // dialing a backend, default 5s
	MaxClients      int      `yaml:"max_clients"`       // client connections in total, 0 = unlimited
	LoginTimeout    Duration `yaml:"login_timeout"`     // client startup+auth deadline, default 10s
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`  // graceful shutdown deadline, default 30s
	PreparedCache   int      `yaml:"prepared_cache"`    // prepared statements kept per backend (LRU), default 500
}

// Replicas configures read routing to replicas.
type Replicas struct {
	Strategy         string   `yaml:"strategy"`           // round_robin (default) | random | least_conn | weighted
	MaxLagBytes      int64    `yaml:"max_lag_bytes"`      // default 16 MiB; 0 = no byte bound
	MaxLag           Duration `yaml:"max_lag"`            // default 10s; 0 = no time bound
	LagCheckInterval Duration `yaml:"lag_check_interval"` // default 500ms
	Fallback         string   `yaml:"fallback"`           // primary (default) | error
	ReadYourWrites   *bool    `yaml:"read_your_writes"`   // default true
}

// Health configures node health checks.
type Health struct {
	Interval      Duration `yaml:"interval"`       // default 1s
	Timeout       Duration `yaml:"timeout"`        // default 1s
	FailThreshold int      `yaml:"fail_threshold"` // consecutive failures before a ban, default 2
	BanDuration   Duration `yaml:"ban_duration"`   // longest breaker cool-down (a flapping node's), default 10s
	// BreakerCooldown is how long a node's breaker stays open before a
	// health check may close it; it doubles while the node keeps failing.
	BreakerCooldown Duration `yaml:"breaker_cooldown"` // default 1s
}

// BackendTLS is how pgrouter connects to Postgres servers, with libpq's
// sslmode vocabulary.
type BackendTLS struct {
	SSLMode string `yaml:"sslmode"` // disable (default) | require | verify-ca | verify-full
	CAFile  string `yaml:"ca_file"` // PEM roots for verify-ca / verify-full (required there)
	// AllowCleartextPassword lets a server ask for the password in clear
	// text (auth method "password"); refused by default.
	AllowCleartextPassword *bool `yaml:"allow_cleartext_password"`
}

// User is a login accepted by pgrouter.
type User struct {
	Name     string `yaml:"name"`
	Password string `yaml:"password"` // plain text, or a SCRAM-SHA-256$… verifier; ${ENV} expanded
	Auth     string `yaml:"auth"`     // scram-sha-256 (default) | md5 | trust
	// Credentials pgrouter uses towards the shards; default: Name and Password.
	// Required when Password is a SCRAM verifier (pgrouter cannot log in with a verifier).
	ServerUser     string `yaml:"server_user"`
	ServerPassword string `yaml:"server_password"`
	PoolSize       int    `yaml:"pool_size"`    // overrides pool.size for this user's pools
	MaxClients     int    `yaml:"max_clients"`  // overrides limits.max_clients_per_user (0 = that)
	QueryRate      int    `yaml:"query_rate"`   // overrides limits.user_query_rate (0 = that)
	Admin          bool   `yaml:"admin"`        // may use the admin console (database "pgrouter")
	DefaultRole    string `yaml:"default_role"` // auto (default) | primary | replica
}

// Shard is one primary with its streaming replicas.
type Shard struct {
	Name     string `yaml:"name"`
	Primary  Node   `yaml:"primary"`
	Replicas []Node `yaml:"replicas"`
	Strategy string `yaml:"strategy"` // overrides replicas.strategy for this shard
	// TLS overrides backend_tls for this shard's nodes (keys left out are
	// taken from backend_tls).
	TLS *BackendTLS `yaml:"tls"`
	// Hash lists the hash slots (PARTITION BY HASH modulus/remainder pairs)
	// whose keys this shard holds for every hash-sharded table. nil (key
	// absent on every shard): shard i holds remainder i of modulus
	// len(shards). An empty list makes a spare that holds no hash keys.
	Hash []HashSlot `yaml:"hash"`
}

// HashSlot is one partition of PARTITION BY HASH: the keys whose partition
// hash leaves Remainder when divided by Modulus.
type HashSlot struct {
	Modulus   int `yaml:"modulus"`
	Remainder int `yaml:"remainder"`
}

// Node is one Postgres server. In YAML it is either "host:port" or a mapping.
type Node struct {
	Name   string `yaml:"name"`   // default "<shard>-primary" / "<shard>-replica<i>" (i from 1)
	Addr   string `yaml:"addr"`   // host:port
	Weight int    `yaml:"weight"` // for strategy weighted, default 1
}

// Database is a logical database clients connect to; it spans all shards.
type Database struct {
	Name            string         `yaml:"name"`   // what clients put in their DSN
	Dbname          string         `yaml:"dbname"` // database name on the shards, default Name
	ShardedTables   []ShardedTable `yaml:"sharded_tables"`
	ReferenceTables []string       `yaml:"reference_tables"` // copied on every shard
	UnlistedTables  string         `yaml:"unlisted_tables"`  // error | reference | shard:NAME; default shard:<first shard> when 1 shard, else error
	CrossShard      string         `yaml:"cross_shard"`      // allow (default) | deny
	TwoPhaseCommit  bool           `yaml:"two_phase_commit"` // default false
	ReferenceWrites string         `yaml:"reference_writes"` // refuse (default) | best_effort
	WriteFunctions  []string       `yaml:"write_functions"`  // added to the built-in list of side-effect functions
}

// ShardedTable says how rows of one table are placed on shards.
type ShardedTable struct {
	Table     string       `yaml:"table"`      // name, optionally schema-qualified
	Column    string       `yaml:"column"`     // shard key column
	Type      string       `yaml:"type"`       // int | text | uuid
	Function  string       `yaml:"function"`   // hash | range | list | directory
	Ranges    []RangeBound `yaml:"ranges"`     // function range: [from, to) → shard
	Lists     []ListEntry  `yaml:"lists"`      // function list: values → shard
	Default   string       `yaml:"default"`    // range/list: shard for unmatched keys; "" = error
	NullShard string       `yaml:"null_shard"` // shard for NULL keys; "" = error
	Directory *Directory   `yaml:"directory"`  // function directory
}

// RangeBound maps keys in [From, To) to Shard. A nil bound is open.
type RangeBound struct {
	From  *string `yaml:"from"`
	To    *string `yaml:"to"`
	Shard string  `yaml:"shard"`
}

// ListEntry maps explicit key values to Shard.
type ListEntry struct {
	Values []string `yaml:"values"`
	Shard  string   `yaml:"shard"`
}

// Directory looks a key's shard up in a table.
type Directory struct {
	Node        string   `yaml:"node"`         // host:port of the server holding the lookup table, or a node name of the topology
	Dbname      string   `yaml:"dbname"`       // default: the database's dbname
	User        string   `yaml:"user"`         // configured user whose server credentials connect; default the first user
	Query       string   `yaml:"query"`        // default "SELECT shard FROM pgrouter_directory WHERE key = $1"
	AssignQuery string   `yaml:"assign_query"` // auto_assign: default "INSERT INTO pgrouter_directory (key, shard) VALUES ($1, $2) ON CONFLICT DO NOTHING"
	MoveQuery   string   `yaml:"move_query"`   // resharding: default "UPDATE pgrouter_directory SET shard = $2 WHERE key = $1"
	CacheSize   int      `yaml:"cache_size"`   // default 100000; 0 = no cache
	CacheTTL    Duration `yaml:"cache_ttl"`    // default 60s; 0 = entries never expire
	Timeout     Duration `yaml:"timeout"`      // one lookup (dial included), default 5s
	PoolSize    int      `yaml:"pool_size"`    // connections to the directory node, default 4
	AutoAssign  string   `yaml:"auto_assign"`  // "" (unknown key = error) | hash: insert a mapping chosen by hash
}

// Duration is a time.Duration written as "250ms", "5s", "1h" in YAML.
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

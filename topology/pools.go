package topology

import (
	"time"

	"github.com/pgrouter/pgrouter/config"
	"github.com/pgrouter/pgrouter/pool"
)

// poolKey names a pool of a node: the client-facing user and database.
type poolKey struct{ user, db string }

type poolEntry struct {
	User, Database string
	pool           *pool.Pool
}

// PoolInfo is one backend pool of a node, for metrics and the admin console.
type PoolInfo struct {
	User     string // client-facing user name
	Database string // client-facing database name
	Pool     *pool.Pool
}

// Pool returns the backend pool for (this node, user, database), creating it
// on first use. The lookup is a lock-free, allocation-free load of an
// immutable map; creation copies the map under a mutex (rare).
// Returns nil if the node was removed by a reload or the topology closed.
func (n *Node) Pool(u *config.User, db *config.Database) *pool.Pool {
	key := poolKey{u.Name, db.Name}
	if e, ok := (*n.pools.Load())[key]; ok {
		return e.pool
	}
	n.poolMu.Lock()
	defer n.poolMu.Unlock()
	old := *n.pools.Load()
	if e, ok := old[key]; ok {
		return e.pool
	}
	if n.closed.Load() {
		return nil
	}
	cfg := n.poolConfig(u, db)
	e := &poolEntry{User: u.Name, Database: db.Name, pool: pool.New(cfg)}
	if cfg.Size == 0 {
		// A fleet cap of 0 (no share of the budget granted yet): pool.New
		// makes a size of 0 one, which would open a backend beyond the
		// fleet's budget.
		e.pool.SetSize(0)
	}
	next := make(map[poolKey]*poolEntry, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[key] = e
	n.pools.Store(&next)
	return e.pool
}

// poolConfig sizes a pool from the user's pool_size or pool.size and logs in
// with the user's backend credentials (server_user/server_password, falling
// back to the client-facing name/password).
func (n *Node) poolConfig(u *config.User, db *config.Database) pool.Config {
	cfg := n.poolCfg.Load()
	p := cfg.Pool
	size := n.cappedSize(n.configuredSize(u.Name))
	user, password := backendCredentials(u)
	bt := cfg.BackendTLSFor(n.Shard)
	return pool.Config{
		SSLMode:         bt.SSLMode,
		SSLRootCert:     bt.CAFile,
		RequireAuth:     requireAuth(bt),
		Name:            n.Name + "/" + u.Name + "/" + db.Name,
		Addr:            n.Addr,
		User:            user,
		Password:        password,
		Database:        backendDatabase(db),
		Size:            size,
		MinIdle:         p.MinIdle,
		MaxWaiters:      p.MaxWaiters,
		AcquireTimeout:  p.AcquireTimeout.D(),
		IdleTimeout:     p.IdleTimeout.D(),
		MaxLifetime:     p.MaxLifetime.D(),
		HealthCheckIdle: p.HealthCheckIdle.D(),
		ConnectTimeout:  p.ConnectTimeout.D(),
		PreparedCache:   p.PreparedCache,
		RuntimeParams:   map[string]string{"application_name": "pgrouter"},
		Log:             n.shard.log.With("shard", n.Shard, "node", n.Name, "user", u.Name, "db", db.Name),
	}
}

// Pools lists the node's pools, for metrics and SHOW POOLS.
func (n *Node) Pools() []PoolInfo {
	m := *n.pools.Load()
	out := make([]PoolInfo, 0, len(m))
	for _, e := range m {
		out = append(out, PoolInfo{User: e.User, Database: e.Database, Pool: e.pool})
	}
	return out
}

// servedSince reports whether a backend of the node came back from a round
// trip after t (pool.LastReleased): the node answered real traffic then.
func (n *Node) servedSince(t time.Time) bool {
	for _, e := range *n.pools.Load() {
		if e.pool.LastReleased().After(t) {
			return true
		}
	}
	return false
}

// closePools refuses new pools and closes the existing ones; pool.Close
// closes idle backends now and checked-out ones when they are released.
func (n *Node) closePools() {
	n.poolMu.Lock()
	n.closed.Store(true)
	m := *n.pools.Load()
	n.poolMu.Unlock()
	for _, e := range m {
		e.pool.Close()
	}
}

func backendCredentials(u *config.User) (user, password string) {
	user, password = u.ServerUser, u.ServerPassword
	if user == "" {
		user = u.Name
	}
	if password == "" {
		password = u.Password
	}
	return user, password
}

func backendDatabase(db *config.Database) string {
	if db.Dbname != "" {
		return db.Dbname
	}
	return db.Name
}

// requireAuth is the pgconn require_auth value for t: everything but a
// cleartext password unless allowed.
func requireAuth(t config.BackendTLS) string {
	if t.CleartextAllowed() {
		return ""
	}
	return "!password"
}

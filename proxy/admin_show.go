package proxy

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/pgrouter/pgrouter/pgwire"

	"github.com/pgrouter/pgrouter/pool"
	"github.com/pgrouter/pgrouter/topology"
)

// adminShow answers SHOW <what>.
func (ss *session) adminShow(what string) error {
	switch what {
	case "POOLS":
		ss.showPools()
	case "SERVERS":
		ss.showServers()
	case "CLIENTS":
		ss.showClients()
	case "STATS":
		ss.showStats()
	case "SHARDS":
		ss.showShards()
	case "NODES":
		var rows [][]string
		for _, n := range ss.srv.Topology().Snapshot().Nodes() {
			rows = append(rows, nodeRow(n))
		}
		ss.adminTable([]string{"node", "shard", "addr", "configured_role", "role", "up", "banned_until", "lag_bytes", "lag_seconds", "in_rotation", "active"}, rows)
	case "CONFIG":
		ss.showConfig()
	case "TRANSACTIONS":
		return ss.showTransactions()
	case "VERSION":
		ss.adminTable([]string{"version"}, [][]string{{ss.srv.versionLine()}})
	case "FLEET":
		return ss.showFleet()
	case "RESHARD":
		return ss.showReshard()
	case "HELP":
		ss.adminTable([]string{"commands"}, [][]string{{adminHelp}})
	default:
		return pgwire.Error(pgwire.SyntaxError, fmt.Sprintf("unknown SHOW target %q", what), "commands: "+adminHelp)
	}
	return nil
}

// poolRow is one pool of one node, in a stable order for the console.
type poolRow struct {
	node *topology.Node
	info topology.PoolInfo
}

func (ss *session) pools() []poolRow {
	var out []poolRow
	for _, n := range ss.srv.Topology().Snapshot().Nodes() {
		for _, p := range n.Pools() {
			out = append(out, poolRow{n, p})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.info.Database != b.info.Database {
			return a.info.Database < b.info.Database
		}
		if a.info.User != b.info.User {
			return a.info.User < b.info.User
		}
		return a.node.Name < b.node.Name
	})
	return out
}

// showPools uses PgBouncer's column names: cl_active are clients holding a
// backend of the pool, cl_waiting clients queued for one; maxwait is how long
// the oldest waiter has waited (seconds).
func (ss *session) showPools() {
	holding := map[*pool.Pool]int{}
	for _, c := range ss.srv.Sessions() {
		if b := c.running.Load(); b != nil {
			holding[b.pool]++
		}
	}
	mode := ss.srv.Config().Pool.Mode
	var rows [][]string
	for _, p := range ss.pools() {
		st := p.info.Pool.Stats()
		rows = append(rows, []string{p.info.Database, p.info.User, p.node.Name, itoa(holding[p.info.Pool]), itoa(st.Waiting),
			itoa(st.Active), itoa(st.Idle), itoa(st.Total), fmt.Sprintf("%.3f", st.MaxWait.Seconds()), mode})
	}
	ss.adminTable([]string{"database", "user", "node", "cl_active", "cl_waiting", "sv_active", "sv_idle", "sv_total", "maxwait", "pool_mode"}, rows)
}

func (ss *session) showServers() {
	var rows [][]string
	for _, p := range ss.pools() {
		st := p.info.Pool.Stats()
		rows = append(rows, []string{p.node.Name, p.node.Addr, p.info.User, p.info.Database, itoa(st.Active), itoa(st.Idle), itoa(st.Total),
			u64(st.Opened), u64(st.Closed), u64(st.AcquireTimeouts), u64(st.WaitCount), fmt.Sprintf("%.3f", st.WaitTime.Seconds())})
	}
	ss.adminTable([]string{"node", "addr", "user", "database", "active", "idle", "total", "opened", "closed", "acquire_timeouts",
		"waits", "wait_seconds"}, rows)
}

// showClients lists sessions. state is Postgres's pg_stat_activity wording:
// "active" while pgrouter handles one of the client's requests, "idle in
// transaction" (or "… (aborted)") between the statements of a transaction,
// else "idle"; node is the backend's node while the client holds one.
func (ss *session) showClients() {
	var rows [][]string
	sessions := ss.srv.Sessions()
	sort.Slice(sessions, func(i, j int) bool { return sessions[i].pid < sessions[j].pid })
	for _, c := range sessions {
		state, node := clientState(c), ""
		if b := c.running.Load(); b != nil {
			node = b.node.Name
		}
		pinned := ""
		if p := c.pinnedReason.Load(); p != nil {
			pinned = *p
		}
		rows = append(rows, []string{u64(uint64(c.pid)), c.user.Name, c.dbName, c.conn.RemoteAddr().String(), state, node,
			c.connectedAt.UTC().Format(time.RFC3339), u64(c.queries.Load()), pinned})
	}
	ss.adminTable([]string{"client_id", "user", "database", "addr", "state", "node", "connect_time", "queries", "pinned"}, rows)
}

func clientState(c *session) string {
	switch {
	case c.busy.Load():
		return "active"
	case c.shownTx.Load() == uint32(pgwire.TxActive):
		return "idle in transaction"
	case c.shownTx.Load() == uint32(pgwire.TxFailed):
		return "idle in transaction (aborted)"
	}
	return "idle"
}

func (ss *session) showShards() {
	snap := ss.srv.Topology().Snapshot()
	var rows [][]string
	for _, sh := range snap.Shards {
		primary := ""
		if p, err := snap.Primary(sh.Index); err == nil {
			primary = p.Name
		}
		rows = append(rows, []string{itoa(sh.Index), sh.Name, primary, itoa(len(sh.Nodes) - 1), sh.Strategy})
	}
	ss.adminTable([]string{"index", "shard", "primary", "replicas", "strategy"}, rows)
}

// showConfig lists the main settings; never passwords or TLS keys.
func (ss *session) showConfig() {
	cfg := ss.srv.Config()
	onOff := func(b bool) string {
		if b {
			return "on"
		}
		return "off"
	}
	ss.adminTable([]string{"key", "value"}, [][]string{
		{"file", cfg.Path}, {"listen", cfg.Listen}, {"metrics.listen", cfg.Metrics.Listen},
		{"pool.mode", cfg.Pool.Mode}, {"pool.size", itoa(cfg.Pool.Size)}, {"pool.acquire_timeout", cfg.Pool.AcquireTimeout.D().String()},
		{"pool.shutdown_timeout", cfg.Pool.ShutdownTimeout.D().String()},
		{"pool.max_clients", itoa(cfg.Pool.MaxClients)}, {"replicas.strategy", cfg.Replicas.Strategy},
		{"replicas.max_lag_bytes", strconv.FormatInt(cfg.Replicas.MaxLagBytes, 10)}, {"replicas.max_lag", cfg.Replicas.MaxLag.D().String()},
		{"replicas.lag_check_interval", cfg.Replicas.LagCheckInterval.D().String()}, {"replicas.fallback", cfg.Replicas.Fallback},
		{"replicas.read_your_writes", onOff(cfg.Replicas.RYW())}, {"health.interval", cfg.Health.Interval.D().String()},
		{"health.breaker_cooldown", cfg.Health.BreakerCooldown.D().String()}, {"health.ban_duration", cfg.Health.BanDuration.D().String()},
		{"limits.max_clients_per_user", itoa(cfg.Limits.MaxClientsPerUser)}, {"limits.max_clients_per_database", itoa(cfg.Limits.MaxClientsPerDatabase)},
		{"limits.admin_reserved", itoa(cfg.Limits.AdminReserved)}, {"limits.user_query_rate", itoa(cfg.Limits.UserQueryRate)},
		{"tls", onOff(cfg.TLS.CertFile != "")}, {"tls.mode", cfg.TLS.Mode}, {"backend_tls.sslmode", cfg.BackendTLS.SSLMode},
		{"routing.allow_shard_hints", onOff(cfg.Routing.ShardHints())},
		{"timeouts.idle_in_transaction", cfg.Timeouts.IdleInTransaction.D().String()}, {"timeouts.query", cfg.Timeouts.Query.D().String()},
		{"shards", itoa(len(cfg.Shards))}, {"databases", itoa(len(cfg.Databases))}, {"users", itoa(len(cfg.Users))},
	})
}

func nodeRow(n *topology.Node) []string {
	banned := ""
	if n.Banned() {
		banned = n.BannedUntil().UTC().Format(time.RFC3339)
	}
	lagB, lagS := "", ""
	if n.Role() == topology.RoleReplica && n.LagKnown() {
		lagB, lagS = strconv.FormatInt(n.LagBytes(), 10), fmt.Sprintf("%.3f", n.LagSeconds())
	}
	return []string{n.Name, n.Shard, n.Addr, n.ConfiguredRole().String(), n.Role().String(), strconv.FormatBool(n.Up()), banned,
		lagB, lagS, strconv.FormatBool(n.InRotation()), strconv.FormatInt(n.Active(), 10)}
}

func itoa(i int) string   { return strconv.Itoa(i) }
func u64(i uint64) string { return strconv.FormatUint(i, 10) }

// labels renders a label set for SHOW STATS keys: {shard=s0,role=replica}.
func labels(kv ...string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i := 0; i+1 < len(kv); i += 2 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(kv[i] + "=" + kv[i+1])
	}
	b.WriteByte('}')
	return b.String()
}

package proxy

import (
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/pgrouter/pgrouter/topology"
)

// adminShow answers SHOW <what>.
func (ss *session) adminShow(what string) error {
	snap := ss.srv.Topology().Snapshot()
	cfg := ss.srv.Config()
	switch what {
	case "POOLS", "SERVERS":
		cols := []string{"database", "user", "node", "cl_waiting", "sv_active", "sv_idle", "sv_total", "maxwait", "pool_mode"}
		if what == "SERVERS" {
			cols = []string{"node", "addr", "user", "database", "active", "idle", "total", "opened", "closed", "acquire_timeouts"}
		}
		var rows [][]string
		for _, n := range snap.Nodes() {
			for _, p := range n.Pools() {
				st := p.Pool.Stats()
				if what == "POOLS" {
					rows = append(rows, []string{p.Database, p.User, n.Name, itoa(st.Waiting), itoa(st.Active), itoa(st.Idle), itoa(st.Total),
						fmt.Sprintf("%.3f", st.MaxWait.Seconds()), cfg.Pool.Mode})
				} else {
					rows = append(rows, []string{n.Name, n.Addr, p.User, p.Database, itoa(st.Active), itoa(st.Idle), itoa(st.Total),
						u64(st.Opened), u64(st.Closed), u64(st.AcquireTimeouts)})
				}
			}
		}
		ss.adminTable(cols, rows)
	case "CLIENTS":
		var rows [][]string
		sessions := ss.srv.Sessions()
		sort.Slice(sessions, func(i, j int) bool { return sessions[i].pid < sessions[j].pid })
		for _, c := range sessions {
			state, node := "idle", ""
			if b := c.running.Load(); b != nil {
				state, node = "active", b.node.Name
			}
			pinned := ""
			if p := c.pinnedReason.Load(); p != nil {
				pinned = *p
			}
			rows = append(rows, []string{u64(uint64(c.pid)), c.user.Name, c.dbName, c.conn.RemoteAddr().String(), state, node,
				c.connectedAt.UTC().Format(time.RFC3339), u64(c.queries.Load()), pinned})
		}
		ss.adminTable([]string{"client_id", "user", "database", "addr", "state", "node", "connect_time", "queries", "pinned"}, rows)
	case "STATS":
		rows := [][]string{{"clients", itoa(int(ss.srv.clients.Load()))}, {"queries_total", u64(ss.srv.queriesTotal())},
			{"failovers_total", u64(ss.srv.Topology().Failovers())}}
		for db, r := range ss.srv.state.Load().routers {
			cs := r.Stats()
			rows = append(rows, []string{"plan_cache_hits{" + db + "}", u64(cs.Hits)}, []string{"plan_cache_misses{" + db + "}", u64(cs.Misses)})
		}
		ss.adminTable([]string{"stat", "value"}, rows)
	case "SHARDS":
		var rows [][]string
		for _, sh := range snap.Shards {
			primary := ""
			if p, err := snap.Primary(sh.Index); err == nil {
				primary = p.Name
			}
			rows = append(rows, []string{itoa(sh.Index), sh.Name, primary, itoa(len(sh.Nodes) - 1), sh.Strategy})
		}
		ss.adminTable([]string{"index", "shard", "primary", "replicas", "strategy"}, rows)
	case "NODES":
		var rows [][]string
		for _, n := range snap.Nodes() {
			rows = append(rows, nodeRow(n))
		}
		ss.adminTable([]string{"node", "shard", "addr", "configured_role", "role", "up", "banned_until", "lag_bytes", "lag_seconds", "in_rotation", "active"}, rows)
	case "CONFIG":
		rd := "on"
		if !cfg.Replicas.RYW() {
			rd = "off"
		}
		ss.adminTable([]string{"key", "value"}, [][]string{
			{"file", cfg.Path}, {"listen", cfg.Listen}, {"metrics.listen", cfg.Metrics.Listen},
			{"pool.mode", cfg.Pool.Mode}, {"pool.size", itoa(cfg.Pool.Size)}, {"pool.acquire_timeout", cfg.Pool.AcquireTimeout.D().String()},
			{"pool.max_clients", itoa(cfg.Pool.MaxClients)}, {"replicas.strategy", cfg.Replicas.Strategy},
			{"replicas.max_lag_bytes", strconv.FormatInt(cfg.Replicas.MaxLagBytes, 10)}, {"replicas.max_lag", cfg.Replicas.MaxLag.D().String()},
			{"replicas.lag_check_interval", cfg.Replicas.LagCheckInterval.D().String()}, {"replicas.fallback", cfg.Replicas.Fallback},
			{"replicas.read_your_writes", rd}, {"health.interval", cfg.Health.Interval.D().String()},
			{"shards", itoa(len(cfg.Shards))}, {"databases", itoa(len(cfg.Databases))}, {"users", itoa(len(cfg.Users))},
		})
	case "VERSION":
		ss.adminTable([]string{"version"}, [][]string{{ss.srv.Version()}})
	default:
		return pgErr("42601", fmt.Sprintf("unknown SHOW target %q", what), "commands: "+adminHelp)
	}
	return nil
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

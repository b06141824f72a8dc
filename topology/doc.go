// Package topology is pgrouter's live view of the cluster.
//
//	Topology ── atomic.Pointer ──▶ Snapshot (immutable: config, shards, nodes)
//	   │                              │ Primary(shard) / Replica(shard, floor) / WriteFloor(shard)
//	   │ one monitor goroutine        ▼ lock-free, allocation-free reads of…
//	   └─ per node ─ check ──────▶ Node (atomics: role, up, bans, LSNs, lag, rotation)
//	                    │           └─ Pool(user, db): lazily created backend pools
//	                    └────────▶ shardState (elected primary, primary WAL samples)
//
// Each monitor holds its own pgconn connection (never from the pools) and runs
// one query per check: role (pg_is_in_recovery), WAL/replay/receive LSNs, the
// replay age and the timeline. Primaries' samples carry a sequence number claimed
// before the query, which is what read-your-writes Floors name. After every
// check the shard re-elects its primary: newest timeline, then sticky. Reads pick
// among replicas that are healthy, within lag bounds (with hysteresis) and past
// the caller's floor, or fall back to the primary. Reload swaps the snapshot and
// keeps unchanged nodes with their pools and monitors. A node's role can change
// between choosing it and using it: callers that must not write to a replica
// re-check Node.Role() after acquiring a backend.
package topology

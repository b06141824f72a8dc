// Package proxy is the client side of pgrouter: listener, startup, TLS,
// authentication (SCRAM-SHA-256, MD5, trust), and one session goroutine per
// client that speaks the PostgreSQL protocol.
//
//	client ──▶ session.run ── Query ──────────────▶ simpleQuery ─┐
//	                       └─ Parse/Bind/…/Sync ──▶ batch ───────┤ router: Route
//	                                                             ▼
//	             acquireBackend(shard, role) ◀── topology.Snapshot.Primary / Replica(floor)
//	                                                             ▼
//	             bout = [GUC sync][deferred BEGIN][client messages, statements renamed]
//	                       one write ─▶ backend ─▶ relay: raw frames to the client,
//	                       answers checked off an expectation queue; one write per round trip
//
// Transaction pooling: the backend returns to its pool at ReadyForQuery 'I'
// unless the session is pinned (temp table, session advisory lock, LISTEN,
// WITH HOLD cursor, SQL PREPARE) or pool.mode is session. BEGIN is answered
// locally and sent with the transaction's first real statement, whose shard
// and role decide where the whole transaction runs. Prepared statements are
// renamed to one server-side name per distinct (text, parameter types) and
// re-Parsed on backends that lack them; Close is answered locally.
package proxy

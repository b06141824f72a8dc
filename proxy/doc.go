// Package proxy is the client side of pgrouter: listener, startup, TLS,
// authentication (SCRAM-SHA-256, MD5, trust), and one session goroutine per
// client that speaks the PostgreSQL protocol.
//
//	client ──▶ session.run ── Query ──────────────▶ simpleQuery ─┐
//	                       └─ Parse/Bind/…/Sync ──▶ batchState ──┤ router: Route
//	                                                             ▼
//	             acquireBackend(shard, role) ◀── topology.Snapshot.Primary / Replica(floor)
//	                                                             ▼
//	   one shard:  exchange.bout = [GUC sync][deferred BEGIN][client messages, renamed]
//	               one write ─▶ backend ─▶ relay: raw frames to the client, answers
//	               checked off exchange.queue; one client write per round trip
//	   several:    sendEach (fanout.go): every shard's request written, then each
//	               read (scatter merge, split results, COPY, 2PC)
//	   both read backends only through binding.next / readUntilReady
//	   (backend_read.go): timeouts.query and a lost backend handled alike.
//
// The session's state is split by concern into embedded types: txState
// (the transaction: backends, deferred BEGIN, savepoints, status),
// batchState (the extended batch until Sync) and exchange (one round trip
// with the backend). Message kinds, statuses and SQLSTATEs are named in
// package pgwire; shared *pgconn.PgError values are never changed, only
// copied (pgwire.WithMessage and friends).
//
// Transaction pooling: the backend returns to its pool at ReadyForQuery
// TxIdle unless the session is pinned (temp table, session advisory lock,
// LISTEN, WITH HOLD cursor, SQL PREPARE) or pool.mode is session. BEGIN is
// answered locally and sent with the transaction's first real statement,
// whose shard and role decide where the whole transaction runs. Prepared
// statements are renamed to one server-side name per distinct (text,
// parameter types) and re-Parsed on backends that lack them; Close is
// answered locally.
package proxy

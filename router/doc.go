// Package router decides, without I/O, where each statement goes.
//
//	SQL text ──lexer──▶ normalised text + lifted literals (simple protocol)
//	         ──cache──▶ *Plan (LRU by text; pg_query parse only on a miss)
//	Plan  = role (replica|primary) + Tx effect + SETs + pin + routing template
//	template: per statement, the sharded tables met, grouped when joined on
//	          their shard key, and condition trees (AND/OR of key ∈ values)
//	Route(plan, Bind params, session) ──▶ Route{Shards bitset, Role, Any,
//	          Multi, Split, Reason}: evaluating the template costs no parse
//	          and no allocation.
//	Anything that cannot be routed correctly is a *pgconn.PgError, never a guess.
//
// # Read or write
//
// Reads (replica): SELECT, VALUES, SHOW, TABLE, EXPLAIN of a read (also
// EXPLAIN ANALYZE of a read), WITH of only SELECTs, COPY … TO, FETCH.
// Primary: INSERT/UPDATE/DELETE/MERGE, COPY FROM, DDL, SELECT … FOR
// UPDATE/NO KEY UPDATE/SHARE/KEY SHARE, SELECT INTO, data-modifying WITH,
// EXPLAIN of a write (with or without ANALYZE), LOCK, LISTEN/NOTIFY/UNLISTEN,
// CALL, DO, PREPARE/EXECUTE, PREPARE TRANSACTION/COMMIT PREPARED/ROLLBACK
// PREPARED, and any text the parser rejects (Postgres reports the error).
// A call anywhere in the tree (select list, WHERE, subquery, CTE) to a write
// function sends the statement to the primary. Built in:
//
//	nextval, setval
//	currval, lastval   — they write nothing, but their value exists only in
//	                     the backend that ran nextval, which is a primary's;
//	                     on a replica they fail ("not yet defined in this session")
//	pg_advisory_*, pg_try_advisory_* (all, incl. _xact_ and unlock: locks
//	                     taken on a replica would not exclude the primary's writers)
//	txid_current, pg_current_xact_id (assign an xid: fail on a standby)
//	set_config, pg_notify
//	lo_create, lo_creat, lo_import, lo_export, lo_unlink, lo_open, lo_write,
//	lowrite, lo_put, lo_truncate, lo_truncate64, lo_from_bytea
//	pg_switch_wal, pg_create_restore_point, pg_logical_emit_message,
//	pg_create_{physical,logical}_replication_slot, pg_drop_replication_slot,
//	pg_copy_{physical,logical}_replication_slot,
//	pg_replication_origin_create, pg_replication_origin_drop
//
// plus config.Database.WriteFunctions ("name" matches any schema,
// "schema.name" only that one). The session, not the router, applies
// "inside an explicit transaction → primary unless READ ONLY"; Plan.Tx tells
// it BEGIN [READ ONLY], SET TRANSACTION READ ONLY, COMMIT/END, ROLLBACK/ABORT
// (not ROLLBACK TO SAVEPOINT) and PREPARE TRANSACTION. In a multi-statement
// text Plan.Tx is the last such effect; the proxy should trust ReadyForQuery.
//
// # Session state
//
// Plan.Sets lists session-level SET/RESET/SET … TO DEFAULT/RESET ALL/DISCARD
// ALL (not SET LOCAL, not SET TRANSACTION) with values rendered for
// "SET name TO value" ('quoted' strings, bare numbers, lists with commas).
// Plan.Pin names state that cannot move between backends: CREATE TEMP
// TABLE/VIEW/SEQUENCE, CREATE TEMP TABLE AS, SELECT INTO TEMP, the session
// advisory locks pg_advisory_lock, pg_advisory_lock_shared,
// pg_try_advisory_lock, pg_try_advisory_lock_shared (not the _xact_ ones),
// set_config(…, is_local) unless is_local is literally true, LISTEN,
// DECLARE … WITH HOLD, SQL PREPARE, SET … FROM CURRENT. Plan.Unpin marks
// DISCARD ALL and UNLISTEN *. SET/RESET/SHOW pgrouter.role|shard are
// Plan.Local: pgrouter answers them.
//
// # Shard keys
//
// Recognised: key = const|$n (casts, unary minus), key IN (…), key = ANY($n)
// (text or binary arrays), = ANY(ARRAY[…]) / = ANY('{…}'), AND (intersect),
// OR (union), joins of co-located tables on the key (ON/USING/WHERE AND
// chain, correlated subqueries, k IN (SELECT k …)), keys inside FROM
// subqueries, CTEs and EXISTS/IN subqueries of the WHERE's AND chain. Only
// conditions whose rows restrict the result narrow the shards (not LEFT JOIN
// ON, NOT EXISTS, OR branches or select-list subqueries). Several sharded
// groups must all be pinned to one and the same shard, else 0A000.
// INSERT … VALUES takes one key per row (Split + SplitInsert across shards);
// INSERT … SELECT needs a constant key or the key of a co-located source.
// UPDATE may set the key only to a value of the same shard.
//
// # Directory sharding
//
// A table with function: directory has no pure sharding function: its
// keys are resolved by the sharding.Directory injected with WithDirectory
// (package directory in the proxy, an in-memory map in tests). Plans are
// cached as for any table; only the key → shard step asks the directory,
// at route time — constants and key= hints of such tables are kept in the
// plan and looked up when routed, so a changed mapping needs no replan.
// Directory tables are never co-located with other tables.
//
// # COPY … FROM STDIN
//
// A lone COPY … FROM STDIN into a sharded table gets Plan.Copy: the proxy
// runs the unchanged statement on every shard's primary and sends each row
// to the shard of its key (text, CSV and binary formats). The statement
// must list its columns, including the key — COPY t (col, …) FROM STDIN —
// since a pure router cannot know the table's column order (without a list:
// 0A000, hint "list the columns"). Refused with 0A000: FROM a server file or
// PROGRAM, a COPY in a multi-statement query, the
// DEFAULT and ON_ERROR options, ENCODING other than UTF-8 for text keys.
// Into a reference table with reference_writes: best_effort every row goes
// to every shard (Plan.Copy.Reference). A shard=/key= hint sends the whole
// COPY to one shard as a plain relay (no Plan.Copy). Inside an explicit
// transaction the proxy cannot split a COPY (Route.Copy: MultiShardError
// says so). COPY … TO is a read like SELECT.
//
// Reference tables:
// reads anywhere (Any), writes everywhere only with reference_writes:
// best_effort. Hints in comments, read by the lexer (never inside literals):
// /* pgrouter: shard=NAME */, key=VALUE, role=primary|replica.
// Literal lifting keeps pgrouter hint comments in the cache key and drops
// other comments. Known limits: temporary tables are unlisted tables (route
// them with unlisted_tables or a hint); a table hidden by a same-named CTE
// anywhere in the statement is treated as the CTE.
package router

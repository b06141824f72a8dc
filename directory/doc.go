// Package directory resolves the keys of directory-sharded tables
// (function: directory): the shard of a key is what a lookup table on a
// configured Postgres node says.
//
//	router (pure) ──sharding.Directory.Shard(table, key)──▶ Directory
//	    Table: expirable LRU (cache_size, cache_ttl) ── hit ──▶ shard index
//	           miss ──singleflight per key──▶ lookup query on the node
//	           (small pgconn pool) ──▶ shard name ──▶ index
//	           unknown key: 22023, or with auto_assign: hash insert the
//	           hash-chosen mapping (ON CONFLICT DO NOTHING) and read it again
//	Invalidate(table, key) drops entries (admin INVALIDATE DIRECTORY);
//	a reload builds a new Directory, so every cache starts empty.
//
// Unknown keys are never cached, so a mapping added later is seen at once.
// Errors are *pgconn.PgError for the client and never contain key values.
package directory

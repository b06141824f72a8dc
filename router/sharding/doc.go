// Package sharding maps one shard-key value to a shard index. It is pure:
// no I/O, no clocks, no package state; every Func is immutable and safe for
// concurrent use, and Shard allocates nothing.
//
//	SQL literal / Bind param ──KeyFromText / KeyFromBinary──▶ Key
//	Key ──Func.Shard (hash | range | list)──▶ shard index (0-based, config order)
//
// # Hash sharding is PostgreSQL's own partition hash
//
// With N shards, a row is on shard i exactly when Postgres would put it in
// partition REMAINDER i of a table declared
//
//	CREATE TABLE t (...) PARTITION BY HASH (key);
//	CREATE TABLE t_i PARTITION OF t FOR VALUES WITH (MODULUS N, REMAINDER i);
//
// Postgres computes (compute_partition_hash_value in partbounds.c):
//
//	h   = <type's extended hash>(key, HASH_PARTITION_SEED = 0x7A5B22367996DCFD)
//	row = hash_combine64(0, h)   // = h + 0x49a0f4dd15e5a8e3 (mod 2^64)
//	remainder = row % N          // unsigned 64-bit
//
// where the extended hash is hashint8extended for int keys (which equals
// hashint4extended and hashint2extended for values in their range, so the
// column may be smallint, integer or bigint), hashtextextended for text
// (hash_bytes_extended over the UTF-8 bytes; deterministic collations only)
// and uuid_hash_extended for uuid (hash_bytes_extended over the 16 bytes).
// hash_bytes_extended is Bob Jenkins' lookup3 (src/common/hashfn.c).
//
// Postgres hashes bytes as they sit in memory, so its results depend on the
// host's byte order. This package reproduces the little-endian results
// (x86-64, arm64 — every platform Postgres is deployed on in practice); a
// big-endian Postgres would place text and uuid keys differently.
// pgcompat_test.go checks the placement of thousands of keys against a real
// hash-partitioned Postgres table for MODULUS 2, 3, 4 and 7.
//
// DBAs can verify placement in SQL on any Postgres with an empty helper table
// that is hash-partitioned by a column of the key's type (it needs no
// partitions: satisfies_hash_partition takes the modulus as an argument):
//
//	CREATE TABLE shardkey_bigint (k bigint) PARTITION BY HASH (k);
//	-- true when key 42 belongs on shard 1 of 4:
//	SELECT satisfies_hash_partition('shardkey_bigint'::regclass, 4, 1, 42::bigint);
//	-- rows of shard 1 (of 4) that do not belong there:
//	SELECT count(*) FROM t WHERE NOT satisfies_hash_partition('shardkey_bigint'::regclass, 4, 1, t.id::bigint);
//
// The value must have the helper column's exact type (cast int columns to
// bigint; int keys hash alike whatever their width).
//
// A NULL key would go to remainder 0 in Postgres; pgrouter refuses NULL keys
// (SQLSTATE 22023) unless the table sets null_shard, because a NULL shard key
// is almost always a bug in the application.
//
// # Range and list sharding
//
// Ranges are [from, to) with optional open ends, must not overlap, and are
// searched by binary search. Int keys compare numerically; text keys compare
// bytewise, which is C-collation (code point) order and not the order of a
// linguistic collation such as en_US.UTF-8; uuid keys compare bytewise, which
// matches Postgres's uuid ordering. Lists map exact values to shards. A key no
// range or list covers goes to `default`, or fails with SQLSTATE 22023 whose
// message names the table and the key type but never the value (shard keys can
// be personal data, and errors are logged).
//
// Directory sharding needs a lookup table: this package defines the
// Directory interface and a Func that asks it (NewWithDirectory); the
// lookup itself (cache, queries) lives in package directory. Without a
// Directory the Func fails with 0A000.
package sharding

// Package merge combines the results of one SELECT run on several shards
// into exactly what a single Postgres holding all the rows would return, or
// refuses the statement with SQLSTATE 0A000 naming what it cannot merge.
//
//	Analyze(sql) ── parse, inspect the SelectStmt, rewrite ──▶ Plan{ShardSQL, …}   (cache it)
//	executor: Bind ShardSQL on every shard with ShardFormats(clientFormats)
//	Plan.Run(descs, clientFormats, sources, emit)
//	  ├─ concat       no ORDER BY: one shard stream after the other      (concat: run.go)
//	  ├─ merge-sort   ORDER BY: k-way heap merge of sorted shard streams (mergesort.go)
//	  └─ aggregate    GROUP BY / aggregates: hash combine of partial      (agg_run.go)
//	                  aggregates, HAVING, then sort (buffers all groups)
//	  then DISTINCT (hash set), OFFSET, LIMIT, hidden columns stripped   (sink: run.go)
//
// # Using it from the executor
//
// Send ShardSQL (same parameters as the original) to every shard with the
// result formats ShardFormats(clientFormats). For a statement or portal
// Describe, send the client ClientDesc(shardDesc, formats). Run needs every
// shard's RowDescription (checked to be identical but for table OIDs) and a
// Source per shard; a row returned by Source.Next must stay valid until the
// next Next call on that Source. Run emits DataRow bodies through emit and
// returns the client RowDescription and the row count for "SELECT n"; in
// the simple protocol send ClientDesc(descs[0], nil) before the first row.
// Run stops reading once LIMIT is satisfied or on error; draining or
// cancelling the shard queries is then the executor's job.
//
// # What the rewrite does
//
//   - ORDER BY items are matched to select-list columns (position, output
//     name, equal expression); others are appended as hidden columns
//     (__pgrouter_N) and stripped from rows and RowDescription. Shards keep
//     the ORDER BY, so each stream arrives sorted and the merge streams.
//     NULLs sort as Postgres does: last for ASC, first for DESC, unless
//     NULLS FIRST/LAST says otherwise.
//   - LIMIT n OFFSET m (integer literals) becomes LIMIT n+m on the shards
//     and is applied again after the merge.
//   - Aggregates: count(*), count(x), sum, min, max, bool_and/every, bool_or
//     are computed per shard and combined; avg(x) becomes sum(x) plus a
//     hidden count(x), and the final avg is numeric division with Postgres's
//     display scale (select_div_scale: at least 16 significant digits) for
//     integer and numeric input, float8 division for float8 input;
//     count(DISTINCT x) makes the shards also GROUP BY x and the merge counts
//     the union. GROUP BY keys not in the select list, and aggregates used
//     only in ORDER BY or HAVING, become hidden columns. Shards get no
//     ORDER BY, HAVING, DISTINCT or LIMIT in aggregate queries.
//   - HAVING: an AND of `aggregate-or-group-key <op> literal` (=, <>, <, <=,
//     >, >=), evaluated after the combine. A string literal is read as the
//     column's type (22P02 when it does not parse, as in Postgres).
//   - SELECT DISTINCT: shards return DISTINCT, the merge deduplicates again
//     (numeric 1.0 = 1.00, bpchar ignores trailing blanks, float -0 = 0).
//
// # Values
//
// Compared or aggregated values are decoded in text and binary format for
// int2/int4/int8/oid, float4/float8, numeric (binary: numeric_send's base
// 10000 digits, re-encoded byte for byte as Postgres would), text/varchar/
// bpchar/name, bool, date, timestamp, timestamptz and uuid; other types
// (json, interval, arrays, …) are refused when the merge must compare them,
// and passed through untouched otherwise.
//
// # Known limits (documented, not silent)
//
//   - Text is compared bytewise, as under the C collation. Under another
//     database collation the shards sort differently from the merge, and
//     ORDER BY/min/max on text may differ from a single node; ORDER BY …
//     COLLATE other than "C"/"POSIX" is refused.
//   - Float sums (and so float avg) are added in a different order than on
//     one node, so the last bits can differ unless the values are exact;
//     with extra_float_digits <= 0 the shards' partial sums arrive rounded
//     to 15 (6) digits, so the last printed digit can differ too.
//     avg(real) is refused (Postgres accumulates it in float8; write
//     avg(x::float8)).
//   - Text output of computed floats follows the client's
//     extra_float_digits (Options); date/time text must be in the ISO
//     DateStyle (the default); under another DateStyle a merge that orders
//     or aggregates dates and times fails with 0A000 and a hint.
//   - A user-defined aggregate cannot be told from a function without the
//     catalog: such a query is treated as a plain row query.
//   - GROUP BY name resolves to a select-list alias; when the alias also
//     names an input column with a different meaning, Postgres would group
//     by the input column.
//   - Aggregate queries and DISTINCT buffer their groups / distinct keys.
//
// # Refused with 0A000
//
// UNION/INTERSECT/EXCEPT, VALUES, window functions, DISTINCT ON, FOR
// UPDATE/SHARE, SELECT … INTO, subqueries in the select list, subqueries or
// WITH queries containing aggregates, GROUP BY, DISTINCT, LIMIT, window
// functions or set operations other than UNION ALL, WITH RECURSIVE,
// aggregates with FILTER, ORDER BY or WITHIN GROUP, sum/avg(DISTINCT …),
// other aggregates (string_agg, array_agg, stddev, …), expressions over
// aggregate results, GROUPING SETS/ROLLUP/CUBE, SELECT * with aggregates,
// LIMIT/OFFSET that are not literals, FETCH … WITH TIES, ORDER BY … USING,
// and HAVING conditions other than the simple comparisons above.
package merge

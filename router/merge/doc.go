// Package merge combines the results of one SELECT run on several shards
// into exactly what a single Postgres holding all the rows would return, or
// refuses the statement with SQLSTATE 0A000 naming what it cannot merge.
//
//	Analyze(sql) ── parse, inspect the SelectStmt, rewrite ──▶ Plan{ShardSQL, …}
//	proxy sends ShardSQL to every shard (ShardFormats for result formats)
//	Plan.Run(descs, formats, sources, emit)
//	  ├─ concat       no ORDER BY: one shard stream after the other
//	  ├─ merge-sort   ORDER BY: k-way heap merge of the sorted shard streams
//	  └─ aggregate    GROUP BY / aggregates: hash combine of partial
//	                  aggregates, HAVING, then sort
//	  then DISTINCT dedup, OFFSET/LIMIT, hidden columns stripped.
package merge

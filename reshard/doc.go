// Package reshard is the online resharding engine: it moves the rows whose
// shard changes between the running placement and a next one, under live
// traffic, for every sharded table of a database together.
//
//	plan     sharding.PlanMoves → moves grouped by source shard (plan.go)
//	copy     per source: publication + logical slot (pgoutput) with an
//	         exported snapshot; binary COPY of exactly the moving rows,
//	         chunk by chunk, progress persisted (copy.go, state.go)
//	catch-up stream the slot from its snapshot LSN, apply the changes of
//	         moving keys to the targets (catchup.go, apply.go)
//	cutover  proxy's Cutover holds the moving keys' writes; the streams
//	         reach a fence, verify compares per-bucket checksums, the
//	         config file is replaced, the placement switches (cutover.go,
//	         verify.go)
//	cleanup  delete moved rows on the sources, drop slot and publication
//	         (cleanup.go); abort before cutover undoes the copies instead.
//
// The engine runs inside the serving pgrouter (it owns the routers) and
// reaches them through Host; proxy wires the admin console to it.
package reshard

// Package wire is the wire-level differential harness: scripts of frontend
// messages (testdata/*.pgt) are sent to plain Postgres and through pgrouter,
// and the backend messages are compared one by one. Postgres's own answer is
// the reference, so a script only says what to send and how far to read.
//
//	testdata/x.pgt ──parse──▶ blocks (send / until)
//	         │                     │
//	         ▼                     ▼
//	   shard primary          pgrouter (cold instance, 3 concurrent clients,
//	   (reference)            warm shared instance; varied startup params)
//	         └──── normalise ─ compare message by message ─ diff ───┘
//
// Script format (one directive per block, blank lines separate nothing):
//
//	# free text; "# bug: …" marks a known proxy divergence (the test fails if
//	# the script then matches); "# differs: …" must explain every ignore=.
//	send
//	Parse {"Name":"s1","Query":"select $1::int"}
//	Bind {"PreparedStatement":"s1","Parameters":[{"text":"1"}]}
//	Execute {}
//	Sync
//	until [unordered] [ignore=Type.Field,Type…]
//	ReadyForQuery
//
// Message bodies are pgproto3's JSON (field names of its structs); CopyData
// also takes {"Text":"…"} and FunctionCall {"Function":oid,"Args":["…"]}.
// Each "until" line reads backend messages up to and including one of that
// type; "EOF" reads until the server closes the connection. "unordered"
// compares each run of DataRows as a set (where SQL leaves the order open). $SCHEMA in a
// script is the client's private schema (also its search_path).
//
// FuzzSessionLiveness (fuzz_test.go) drives pgrouter with random sequences
// of well-formed messages and checks liveness, not equality.
package wire

package router

import "github.com/pgrouter/pgrouter/router/sharding"

// analysis is the routing template of a Plan: everything about shard choice
// that does not depend on parameter values, so that routing one execution
// only evaluates a few precomputed conditions.
type analysis struct {
	stmts []*stmtPlan
	err   error // plan-level error (bad hint, misuse of pgrouter commands)

	hintShard  int // -1 = none
	hintReason string
	hintKey    bool
	hintKeySet ShardSet
	hintKeyErr error
	hintKeyDir *shardedTable // key hint on a directory-sharded table: look hintKeyTxt up at route time
	hintKeyTxt []byte
	hintRole   Role
	hasRole    bool
	roleWhy    string // why RolePrimary (for Explain)
}

type spKind uint8

const (
	spAny   spKind = iota // no sharded data: any shard
	spFixed               // a fixed set of shards (DDL, reference writes, unlisted shard:NAME)
	spKeyed               // decided by shard keys at execution time
	spErr                 // cannot be routed: err
)

// stmtPlan is the routing template of one statement.
type stmtPlan struct {
	kind          spKind
	err           error
	keyUnsure     bool     // spErr: the write's rows could belong to any shard (no shard choice may route it)
	set           ShardSet // spFixed
	multi         bool     // spFixed: run on every shard of set
	reason        string
	table, column string   // for multi-shard errors
	reference     bool     // spFixed: a reference-table write (every shard holds the same rows)
	ddlTables     []string // utility statements: the sharded tables they name (refused while resharded)

	onlyShard int // ≥0: a table in the statement lives only on this shard

	// spKeyed
	occs     []occ
	occGroup []int32
	conds    []cond
	kids     []int32
	vals     []valSrc
	groups   []group
	insert   bool  // INSERT … VALUES: several shards mean Split, not Multi
	rowsLeaf int32 // INSERT … VALUES: the leaf whose vals are the rows' keys, in order
	oneShard bool  // must not run on several shards (INSERT … VALUES inside WITH)
	updVal   int32 // UPDATE … SET key = value: index in vals, -1 none
	copy     bool  // COPY … FROM STDIN the proxy splits (Plan.Copy)
	updGroup int32
}

// occ is one occurrence of a sharded table in the statement.
type occ struct {
	t     *shardedTable
	level int32
}

type condOp uint8

const (
	cUnknown condOp = iota // says nothing about the key
	cAnd
	cOr
	cLeaf // key ∈ vals
)

type cond struct {
	op       condOp
	occ      int32 // cLeaf
	first, n int32 // cAnd/cOr: kids[first:first+n]; cLeaf: vals[first:first+n]
}

// valSrc is where one key value comes from.
type valSrc struct {
	param int32  // 0-based Bind parameter; -1 = constant
	oid   uint32 // type the SQL casts the parameter to (0 = none)
	neg   bool   // unary minus applied to a parameter
	array bool   // the parameter is an array (= ANY($n))
	set   ShardSet
	err   error // constant: the key's error (bad value, unmatched range…)
	// lazy: a constant key of a directory-sharded table, looked up at route
	// time (text: the literal, nil = NULL) so that the plan stays cacheable.
	lazy bool
	text []byte
	null bool // constant NULL (text is then nil); text and null serve the cutover gate (hold.go)
}

// group is a set of co-located occurrences joined on their shard key: all
// rows that meet in one result row live on one shard.
type group struct {
	roots  []int32 // condition trees to intersect
	t      *shardedTable
	reason string
}

// shardedTable is a configured sharded table, names folded to lower case.
type shardedTable struct {
	schema, name string
	column       string
	typ          sharding.Type
	fn           sharding.Func
	owners       ShardSet // shards that can hold its rows: where a scan not restricted by key goes
	coloc        int      // tables with equal coloc place equal keys on equal shards
	directory    bool     // function: directory (needs a lookup, no pure Func)
	display      string
}

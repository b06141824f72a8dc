// Package router turns SQL text (plus Bind parameters and session hints) into a
// Route: which shards, which role, and why. It is pure: no network, no clocks.
// Plans are cached by statement text so the per-query cost on a hit is tiny.
// The exported API is what `go doc -all ./router` lists.
package router

import "github.com/jackc/pgx/v5/pgconn"

// Role says where a statement may run.
type Role uint8

const (
	RoleReplica Role = iota // read-only: any fresh-enough replica (or the primary)
	RolePrimary             // must run on the primary
)

func (r Role) String() string {
	if r == RolePrimary {
		return "primary"
	}
	return "replica"
}

// TxEffect is what a statement does to the transaction state.
type TxEffect uint8

const (
	TxNone          TxEffect = iota
	TxBegin                  // BEGIN / START TRANSACTION
	TxBeginReadOnly          // BEGIN READ ONLY / START TRANSACTION READ ONLY
	TxSetReadOnly            // SET TRANSACTION READ ONLY (first statement of a transaction)
	TxCommit                 // COMMIT / END / COMMIT PREPARED
	TxRollback               // ROLLBACK / ABORT (not ROLLBACK TO SAVEPOINT)
	TxPrepare                // PREPARE TRANSACTION: ends the transaction block like COMMIT
)

// SetVar is a session-level SET / RESET seen in a statement. SET LOCAL,
// SET TRANSACTION and SET inside functions are not reported.
type SetVar struct {
	Name string // lower-case GUC name; "" with All=true for RESET ALL / DISCARD ALL
	// Value is the canonical SQL text of the argument(s), ready for
	// "SET <Name> TO <Value>": strings single-quoted ('it''s'), numbers and
	// identifiers bare, lists comma-separated ("'$user', public").
	Value string
	Reset bool // RESET name / SET name TO DEFAULT
	All   bool // RESET ALL, DISCARD ALL
}

// LocalCmd is a statement pgrouter answers itself.
type LocalCmd struct {
	Show  bool   // SHOW pgrouter.<Name>; otherwise SET/RESET
	Name  string // "role" or "shard" (SHOW also accepts "all")
	Value string // SET: "primary"|"replica"|"auto" or a shard name; "" = RESET/DEFAULT
}

// Plan is the cached, immutable analysis of one statement text (which may
// hold several statements in the simple protocol). Never modify a Plan.
type Plan struct {
	Role Role
	Tx   TxEffect // of the last transaction-control statement in the text
	Set  *SetVar  // the first session-level SET/RESET, nil if none (see Sets)
	Sets []SetVar // every session-level SET/RESET in order (a text may hold several)
	// Savepoint is true when the text holds SAVEPOINT, RELEASE or ROLLBACK TO:
	// a transaction spanning shards cannot keep savepoints consistent.
	Savepoint bool
	// SavepointCmd is set for a lone SAVEPOINT, RELEASE or ROLLBACK TO: the
	// proxy runs it on every shard of a transaction that spans shards.
	SavepointCmd *SavepointCmd
	// SetLocal is true for SET LOCAL and SET TRANSACTION: settings of the
	// transaction on the one shard where they run.
	SetLocal bool
	// Pin is non-empty when the statement creates session state that cannot move
	// between backends (temp table, session advisory lock, LISTEN, WITH HOLD
	// cursor, SQL PREPARE); it names the reason.
	Pin string
	// Unpin is true for DISCARD ALL / UNLISTEN *: statements that drop the
	// session state pins are about (the session decides whether it is all gone).
	Unpin bool
	// Local is true for statements pgrouter answers itself (SET pgrouter.*,
	// SHOW pgrouter.*); LocalCmd says what.
	Local    bool
	LocalCmd LocalCmd
	// Deallocate is set for a lone DEALLOCATE [PREPARE] name|ALL: the proxy
	// answers it for protocol-level statements, which it renames.
	Deallocate *Deallocate
	// Deallocates lists the DEALLOCATE name statements of a multi-statement
	// text: the proxy runs such a text statement by statement when one of
	// them names a protocol-level statement (answered by the proxy).
	Deallocates []string
	// SchemaChange is true when the text changes the definition of tables,
	// views, types or functions (CREATE, ALTER, DROP, RENAME; temporary
	// objects excepted): statements prepared before may change their result
	// type, and a table's column order may have changed.
	SchemaChange bool
	// Stmts is the number of statements in the text as Postgres splits it
	// (semicolons inside comments or literals do not count); 0 when the
	// parser rejected the text.
	Stmts int
	// Select is true when the text is exactly one SELECT (VALUES, WITH … SELECT
	// included): a multi-shard one needs a merge, never a plain broadcast.
	Select bool
	// NumParams is the highest $n referenced by the statement text.
	NumParams int
	// Unparsed is true when the parser rejected the text: it is routed to a
	// primary (any shard) so that Postgres reports the syntax error.
	Unparsed bool
	// Copy is set for a lone COPY … FROM STDIN that the proxy must execute
	// itself: into a sharded table (rows split by shard key) or, with
	// reference_writes: best_effort, into a reference table (every row to
	// every shard). Its Route is every shard, Multi (with more than one
	// shard), primary, with Route.Copy set. Nil when a hint routes the COPY
	// to one shard: it is then relayed like any single-shard statement.
	Copy *CopyPlan
	// Merge is the proxy's cache of the cross-shard merge plan (router/merge)
	// for the last raw text executed under this Plan: the one part of a Plan
	// that changes after it is built, safe for concurrent use (see Memo).
	Merge Memo

	a    *analysis // routing template (shard-key sources, groups); nil = route anywhere
	text string    // the text it was planned from (the cache key): a successor router re-plans it (Follow)
}

// SavepointKind is what a savepoint statement does.
type SavepointKind uint8

const (
	SavepointSet        SavepointKind = iota // SAVEPOINT name
	SavepointRelease                         // RELEASE [SAVEPOINT] name
	SavepointRollbackTo                      // ROLLBACK TO [SAVEPOINT] name
)

// SavepointCmd is a savepoint statement and the (case-folded) name it uses.
type SavepointCmd struct {
	Kind SavepointKind
	Name string
}

// Deallocate names the statement a DEALLOCATE drops (All: every one).
type Deallocate struct {
	Name string
	All  bool
}

// Session carries per-client routing overrides (SET pgrouter.role /
// pgrouter.shard) and the session settings that change how text is lexed.
type Session struct {
	Role  string // "", auto, primary, replica
	Shard string // "" or a shard name
	// NonStandardStrings: the client's standard_conforming_strings is off, so
	// the backend reads '…' literals with backslash escapes; the router must
	// lex the text the same way (see backendText).
	NonStandardStrings bool `yaml:"non_standard_strings"`
	// ID identifies the session to a cutover gate (Hold): the sessions a
	// cutover waits for pass it. 0 = anonymous.
	ID uint32 `yaml:"-"`
}

// Args are the Bind parameters of an extended-protocol execution.
type Args struct {
	Params    [][]byte
	Formats   []int16  // per Bind semantics: 0, 1 or len(Params) entries
	ParamOIDs []uint32 // from Parse; 0 = unspecified
}

// Route is the decision for one execution. It is a value: routing a cached
// plan allocates nothing.
type Route struct {
	Shards ShardSet // target shard indexes
	Role   Role
	// Any: the statement touches no sharded data (reference-table read,
	// catalog, SET, BEGIN, SELECT 1…): any one shard of Shards will do — the
	// proxy picks (stay on the shard of an open transaction; else reads are
	// spread over every shard's replicas, writes take Shards.First()).
	Any bool
	// Multi: the statement must run on every shard in Shards (no shard key, keys
	// spanning shards, DDL, reference-table writes). See MultiShardError.
	Multi bool
	// Split: a multi-row INSERT whose rows belong to different shards; build
	// one INSERT per shard with (*Router).SplitInsert.
	Split bool
	// Copy: the route of a Plan.Copy statement (see MultiShardError for
	// where it cannot run).
	Copy bool
	// Reference: a write of reference table Table on every shard; each
	// shard's answer is the one Postgres would give (not their sum).
	Reference bool
	Reason    string // which predicate, hint or default decided
	// Table and Column name the sharded table (and its key column) that made
	// the route multi-shard; "" when not applicable.
	Table, Column string
}

// MultiShardError is the client error for a multi-shard route the caller
// cannot (yet) execute: SQLSTATE 0A000 naming the table and key column.
func (rt *Route) MultiShardError() *pgconn.PgError { return multiShardError(rt) }

// CacheStats are the plan cache counters.
type CacheStats struct {
	Hits, Misses uint64
	Size         int // plans currently cached
}

// InsertPart is one per-shard statement of a split multi-row INSERT.
// Params are renumbered $1..$n in the order they appear in SQL.
type InsertPart struct {
	Shard     int
	SQL       string
	Params    [][]byte
	Formats   []int16
	ParamOIDs []uint32
	Rows      []int // SplitInsert: each row's position in the statement's VALUES list
}

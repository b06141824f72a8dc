// Package router turns SQL text (plus Bind parameters and session hints) into a
// Route: which shards, which role, and why. It is pure: no network, no clocks.
// Plans are cached by statement text so the per-query cost on a hit is tiny.
package router

import "github.com/pgrouter/pgrouter/config"

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
	TxRollback               // ROLLBACK / ABORT
)

// SetVar is a session-level SET / RESET seen in a statement. SET LOCAL and
// SET inside functions are not reported (they need no tracking).
type SetVar struct {
	Name  string // lower-case GUC name; "" with All=true for RESET ALL / DISCARD ALL
	Value string // as the server would print it is not needed: the SQL text after TO/=
	Reset bool   // RESET name / SET name TO DEFAULT
	All   bool   // RESET ALL, DISCARD ALL
}

// Plan is the cached, immutable analysis of one statement text.
type Plan struct {
	Role Role
	Tx   TxEffect
	Set  *SetVar // session-level SET/RESET, nil otherwise
	// Pin is non-empty when the statement creates session state that cannot move
	// between backends (temp table, session advisory lock, LISTEN, WITH HOLD
	// cursor, SQL PREPARE); it names the reason.
	Pin string
	// Local is true for statements pgrouter answers itself (SET pgrouter.*, SHOW pgrouter.*).
	Local bool
}

// Session carries per-client routing overrides (SET pgrouter.role / pgrouter.shard).
type Session struct {
	Role  string // "", auto, primary, replica
	Shard string // "" or a shard name
}

// Args are the Bind parameters of an extended-protocol execution.
type Args struct {
	Params    [][]byte
	Formats   []int16  // per Bind semantics: 0, 1 or len(Params) entries
	ParamOIDs []uint32 // from Parse; 0 = unspecified
}

// Route is the decision for one execution.
type Route struct {
	Shards []int  // target shard indexes; more than one means multi-shard
	Role   Role
	Reason string // which predicate, hint or default decided
}

// Router plans statements for one logical database.
type Router struct{}

// New builds a router for db over the ordered shard names.
func New(db *config.Database, shards []string) (*Router, error) { panic("todo") }

// Prepare plans a statement text (extended protocol: once at Parse).
func (r *Router) Prepare(sql string) (*Plan, error) { panic("todo") }

// Route decides where one execution of a prepared plan goes.
func (r *Router) Route(p *Plan, args Args, s Session) (Route, error) { panic("todo") }

// RouteSimple plans (via the cache, with inline literals normalised) and
// routes a simple-protocol query string, which may hold several statements.
func (r *Router) RouteSimple(sql string, s Session) (*Plan, Route, error) { panic("todo") }

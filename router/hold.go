package router

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/pgrouter/pgrouter/router/sharding"
)

// Hold is the cutover gate of a resharding, shared by every Router of one
// proxy (WithHold): while a gate is up, writes whose rows move (keyed writes
// whose key a Move covers; multi-shard or unkeyed writes that would touch a
// move's From shard, or a directory move's To shard) wait inside Route until the gate is released, then
// route again — under the next placement when the cutover switched it (see
// Follow). Marks name shards holding rows of a table that are not their own
// (copies before a switch, leftovers after it): statements over several
// shards that include such a shard are refused, since they could see a row
// twice. The zero Hold is ready to use.
type Hold struct {
	gate  atomic.Pointer[Gate]
	mu    sync.Mutex                          // serialises mark updates (copy-on-write)
	marks atomic.Pointer[map[string]ShardSet] // "db\x00table" (lower case) → marked shards
}

// Gate is one raised hold (Hold.Raise).
type Gate struct {
	from     map[string]ShardSet                  // database → From shards
	touch    map[string]ShardSet                  // database → shards a moving key may be routed to (touchesMoving)
	moving   map[string][]func(sharding.Key) bool // "db\x00table" → Has of its moves
	ready    chan struct{}                        // closed by Exempt
	released chan struct{}                        // closed by Release
	refused  chan struct{}                        // closed by Refuse
	refusal  error                                // set before refused closes
	exempt   func(id uint32) bool
	held     atomic.Int64
	hold     *Hold
}

func tableKey(db, table string) string { return strings.ToLower(db) + "\x00" + strings.ToLower(table) }

// Raise puts up a gate for moves; shardIndex maps a From shard name to its
// index in the running config. Writes that must wait block until Exempt has
// named the sessions that may pass (those the cutover waits for) and then
// until Release.
func (h *Hold) Raise(moves []sharding.Move, shardIndex func(string) int) (*Gate, error) {
	g := &Gate{from: map[string]ShardSet{}, touch: map[string]ShardSet{}, moving: map[string][]func(sharding.Key) bool{},
		ready: make(chan struct{}), released: make(chan struct{}), refused: make(chan struct{}), hold: h}
	for _, m := range moves {
		i := shardIndex(m.From)
		if i < 0 || i >= MaxShards {
			return nil, fmt.Errorf("move of table %q: unknown shard %q", m.Table, m.From)
		}
		db := strings.ToLower(m.Database)
		g.from[db] |= Only(i)
		g.touch[db] |= Only(i)
		if j := shardIndex(m.To); m.Keys != nil && j >= 0 && j < MaxShards {
			// A directory move's keys are routed by their lookup table, which
			// the cutover points at To while the gate is up: a key looked up
			// then routes there, and must wait too.
			g.touch[db] |= Only(j)
		}
		k := tableKey(m.Database, m.Table)
		g.moving[k] = append(g.moving[k], m.Has)
	}
	if !h.gate.CompareAndSwap(nil, g) {
		return nil, fmt.Errorf("another cutover is in progress")
	}
	return g, nil
}

// FromShards is the union of the gate's From shards over all databases.
func (g *Gate) FromShards() ShardSet {
	var s ShardSet
	for _, f := range g.from {
		s |= f
	}
	return s
}

// Exempt names the sessions (by Session.ID) whose writes pass the gate: the
// transactions the cutover waits for must not wait for it in turn.
func (g *Gate) Exempt(f func(id uint32) bool) {
	g.exempt = f
	close(g.ready)
}

// Release lowers the gate; held writes route again.
func (g *Gate) Release() {
	g.hold.gate.CompareAndSwap(g, nil)
	select {
	case <-g.ready:
	default:
		close(g.ready)
	}
	close(g.released)
}

// Refuse turns the gate from holding into refusing: the writes waiting
// at it, and every later statement that would have waited (reads of
// moving keys too), fail with err until Release. A fleet member that held
// for a cutover and then lost contact with the fleet refuses rather than
// routing under a placement the others may have left. Once only.
func (g *Gate) Refuse(err error) {
	g.refusal = err
	close(g.refused)
}

// refusing returns the gate's refusal once Refuse was called.
func (g *Gate) refusing() error {
	select {
	case <-g.refused:
		return g.refusal
	default:
		return nil
	}
}

// Held is how many statements waited at the gate.
func (g *Gate) Held() int64 { return g.held.Load() }

// wait blocks a write at the gate; true means the session is exempt and
// the write goes ahead under the current placement. An error is the
// gate's refusal (Refuse), given up to a write while it waited.
func (g *Gate) wait(id uint32) (bool, error) {
	select {
	case <-g.ready:
		if g.exempt != nil && g.exempt(id) {
			return true, nil
		}
	case <-g.released:
		return false, nil
	case <-g.refused:
		return false, g.refusal
	}
	g.held.Add(1)
	select {
	case <-g.released:
		return false, nil
	case <-g.refused:
		return false, g.refusal
	}
}

// Mark records that shards hold rows of table that are not their own.
func (h *Hold) Mark(db, table string, shards ShardSet) {
	h.updateMarks(tableKey(db, table), shards, true)
}

// Unmark lifts Mark.
func (h *Hold) Unmark(db, table string, shards ShardSet) {
	h.updateMarks(tableKey(db, table), shards, false)
}

// Marked is the marked shards of table.
func (h *Hold) Marked(db, table string) ShardSet {
	if m := h.marks.Load(); m != nil {
		return (*m)[tableKey(db, table)]
	}
	return 0
}

// ReplaceMarks sets the marks to exactly marks (table key by MarkKey →
// marked shards): a fleet member takes the whole set from the reshards
// recorded in etcd.
func (h *Hold) ReplaceMarks(marks map[string]ShardSet) {
	h.mu.Lock()
	defer h.mu.Unlock()
	next := map[string]ShardSet{}
	for k, v := range marks {
		if v != 0 {
			next[k] = v
		}
	}
	if len(next) == 0 {
		h.marks.Store(nil)
		return
	}
	h.marks.Store(&next)
}

// MarkKey is how ReplaceMarks names table of database db.
func MarkKey(db, table string) string { return tableKey(db, table) }

func (h *Hold) updateMarks(k string, shards ShardSet, on bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	next := map[string]ShardSet{}
	if m := h.marks.Load(); m != nil {
		for kk, v := range *m {
			next[kk] = v
		}
	}
	if on {
		next[k] |= shards
	} else if next[k] &^= shards; next[k] == 0 {
		delete(next, k)
	}
	if len(next) == 0 {
		h.marks.Store(nil)
		return
	}
	h.marks.Store(&next)
}

// WithHold shares the proxy's cutover gate and marks with the router.
func WithHold(h *Hold) Option { return func(r *Router) { r.hold = h } }

// Follow makes next the successor of r: once next (or a later successor)
// places keys differently, every call on r — of sessions still holding it,
// with their prepared plans — is answered by the newest router instead, so
// that no session keeps routing under an old placement.
func (r *Router) Follow(next *Router) {
	if next != r {
		r.next.Store(next)
	}
}

// moved returns the newest successor when it places keys differently.
func (r *Router) moved() *Router {
	n := r.next.Load()
	if n == nil {
		return nil
	}
	for nn := n.next.Load(); nn != nil; nn = n.next.Load() {
		n = nn
	}
	if n.placeKey == r.placeKey {
		return nil
	}
	return n
}

// replan is p planned by r (p comes from a predecessor): same text, so the
// same parameters.
func (r *Router) replan(p *Plan) *Plan {
	if p.text == "" {
		return p // an error plan: routing fails the same way anywhere
	}
	np, _ := r.Prepare(p.text)
	return np
}

// guard applies marks and the gate to a route computed under r.
func (r *Router) guard(p *Plan, args *Args, s Session, rt Route) (Route, error) {
	if err := r.checkMarks(p, rt); err != nil {
		return Route{}, err
	}
	g := r.hold.gate.Load()
	if g == nil {
		return rt, nil
	}
	if err := g.refusing(); err != nil && r.touchesMoving(g, p, args, rt, s) {
		return Route{}, err // reads too: the rows may have moved on another member
	}
	if !r.mustHold(g, p, args, rt, s) {
		return rt, nil
	}
	if exempt, err := g.wait(s.ID); err != nil {
		return Route{}, err
	} else if exempt {
		return rt, nil
	}
	if nr := r.moved(); nr != nil {
		return nr.route(nr.replan(p), args, s)
	}
	return r.route(p, args, s)
}

// checkMarks refuses a statement over several shards that would read a
// marked shard's rows of a table.
func (r *Router) checkMarks(p *Plan, rt Route) error {
	m := r.hold.marks.Load()
	if m == nil || p.a == nil {
		return nil
	}
	if err := r.checkDDL(p, *m); err != nil || rt.Shards.Len() < 2 || rt.Any {
		return err
	}
	for _, sp := range p.a.stmts {
		for _, o := range sp.occs {
			if bad := (*m)[tableKey(r.dbName, o.t.display)] & rt.Shards; bad != 0 {
				return pgError(codeFeatureNotSupported,
					fmt.Sprintf("table %q is being resharded: shard %s holds rows of it that are not its own yet (or any more), and a statement over several shards could see them twice",
						o.t.display, r.shardNames[bad.First()]),
					"restrict the statement to one shard by its shard key, or retry when the reshard has finished")
			}
		}
	}
	return nil
}

// checkDDL refuses DDL (and other utility statements, TRUNCATE among
// them) naming a table being resharded: the engine replicates its rows by
// its shape, which must not change under it.
func (r *Router) checkDDL(p *Plan, marks map[string]ShardSet) error {
	for _, sp := range p.a.stmts {
		for _, t := range sp.ddlTables {
			if marks[tableKey(r.dbName, t)] != 0 {
				return pgError(codeNotInPrerequisite,
					fmt.Sprintf("table %q is being resharded: DDL and TRUNCATE on it are refused until the reshard has finished", t),
					"run it after the reshard (SHOW RESHARD in the admin console shows its phase), or RESHARD ABORT first")
			}
		}
	}
	return nil
}

// mustHold: does this write touch rows that move?
func (r *Router) mustHold(g *Gate, p *Plan, args *Args, rt Route, s Session) bool {
	return rt.Role == RolePrimary && r.touchesMoving(g, p, args, rt, s)
}

// touchesMoving: does this statement, read or write, touch rows that move?
func (r *Router) touchesMoving(g *Gate, p *Plan, args *Args, rt Route, s Session) bool {
	if rt.Any || rt.Reference || p.a == nil {
		return false
	}
	if rt.Shards&g.touch[strings.ToLower(r.dbName)] == 0 {
		return false
	}
	a := p.a
	if rt.Multi || rt.Split || rt.Shards.Len() > 1 || a.hintShard >= 0 || a.hintKey || s.Shard != "" {
		return true
	}
	for _, sp := range a.stmts {
		if sp.kind == spKeyed && r.keyedMoving(g, sp, args) {
			return true
		}
	}
	return false
}

// keyedMoving: a key of the statement moves, or a moving table is used
// without a key the router can see.
func (r *Router) keyedMoving(g *Gate, sp *stmtPlan, args *Args) bool {
	seen := false
	for i := range sp.conds {
		c := &sp.conds[i]
		if c.op != cLeaf {
			continue
		}
		t := sp.occs[c.occ].t
		has := g.moving[tableKey(r.dbName, t.display)]
		for j := c.first; j < c.first+c.n; j++ {
			seen = true
			if r.anyKey(&sp.vals[j], t, args, has) {
				return true
			}
		}
	}
	if sp.updVal >= 0 {
		t := sp.groups[sp.updGroup].t
		if r.anyKey(&sp.vals[sp.updVal], t, args, g.moving[tableKey(r.dbName, t.display)]) {
			return true
		}
	}
	if seen {
		return false
	}
	for _, o := range sp.occs {
		if len(g.moving[tableKey(r.dbName, o.t.display)]) > 0 {
			return true
		}
	}
	return false
}

// anyKey reports whether some key of v satisfies one of has (a key that
// does not decode counts as moving: waiting is the safe side).
func (r *Router) anyKey(v *valSrc, t *shardedTable, args *Args, has []func(sharding.Key) bool) bool {
	if len(has) == 0 {
		return false
	}
	hit := false
	err := r.eachKey(v, t, args, func(k sharding.Key) {
		for _, h := range has {
			hit = hit || h(k)
		}
	})
	return hit || err != nil
}

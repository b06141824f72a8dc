package router

import (
	"errors"
	"fmt"

	"github.com/pgrouter/pgrouter/pgwire"

	pg "github.com/pganalyze/pg_query_go/v6"
	pgparser "github.com/pganalyze/pg_query_go/v6/parser"
)

// buildPlan analyses a statement text. parsed is false when the parser
// rejected it; dmlOnly is true when every statement is a plain query (the
// condition for planning a normalised text in place of the raw one).
func (r *Router) buildPlan(sql string) (p *Plan, parsed, dmlOnly bool) {
	a := &analysis{hintShard: -1}
	p = &Plan{a: a, text: sql}
	res, err := pg.Parse(sql)
	if err != nil {
		// A literal continued across a comment parses in Postgres 15, not in
		// pg_query: plan the text without those comments.
		if joined, jerr := backendText(sql, false); jerr == nil && joined != sql {
			if res2, err2 := pg.Parse(joined); err2 == nil {
				sql, res, err = joined, res2, nil
			}
		}
	}
	if err != nil {
		if name, value, ok := localFallback(sql); ok {
			return r.localFallbackPlan(p, name, value), true, false
		}
		p.Role, p.Unparsed = RolePrimary, true
		a.stmts = []*stmtPlan{{kind: spAny, onlyShard: -1, reason: "unparseable: sent to a primary, which reports the error"}}
		if r.all.Len() > 1 && countStatements(sql) > 1 {
			a.err = unparsedError(err)
		}
		return p, false, false
	}
	dmlOnly = true
	var tables []*shardedTable
	for _, raw := range res.Stmts {
		c := r.classify(raw.Stmt, sql)
		facts := r.scanTree(raw.Stmt, &c)
		if facts.maxParam > p.NumParams {
			p.NumParams = facts.maxParam
		}
		switch raw.Stmt.Node.(type) {
		case *pg.Node_SelectStmt, *pg.Node_InsertStmt, *pg.Node_UpdateStmt, *pg.Node_DeleteStmt:
		default:
			dmlOnly = false
		}
		r.mergeClass(p, &c, len(res.Stmts))
		p.SchemaChange = p.SchemaChange || schemaChange(raw.Stmt) && c.pin == ""
		sp := r.analyzeStmtOrCopy(p, raw.Stmt, &c, &facts, len(res.Stmts))
		for _, o := range sp.occs {
			tables = append(tables, o.t)
		}
		a.stmts = append(a.stmts, sp)
	}
	if len(a.stmts) == 0 {
		a.stmts = []*stmtPlan{{kind: spAny, onlyShard: -1, reason: "empty query"}}
	}
	p.Stmts = len(res.Stmts)
	if len(res.Stmts) == 1 {
		_, p.Select = res.Stmts[0].Stmt.Node.(*pg.Node_SelectStmt)
	}
	if len(p.Sets) > 0 {
		p.Set = &p.Sets[0]
	}
	r.applyHints(p, sql, tables)
	if (a.hintShard >= 0 || a.hintKey) && p.Copy != nil && p.Copy.Reference {
		p.Copy = nil // the hint sends the whole COPY to one shard: a plain relay
	}
	return p, true, dmlOnly
}

// analyzeStmtOrCopy is analyzeStmt, except for COPY … FROM into a sharded
// or (best-effort) reference table, which the proxy executes row by row.
func (r *Router) analyzeStmtOrCopy(p *Plan, n *pg.Node, c *stmtClass, f *treeFacts, nstmts int) *stmtPlan {
	cs := n.GetCopyStmt()
	if cs == nil || !cs.IsFrom || cs.Relation == nil {
		return r.analyzeStmt(n, c, f)
	}
	if sp, cp, ok := r.analyzeCopyFrom(cs, nstmts); ok {
		p.Copy = cp
		return sp
	}
	sp := r.analyzeStmt(n, c, f)
	p.Copy = r.referenceCopy(cs, sp, nstmts)
	return sp
}

func (r *Router) mergeClass(p *Plan, c *stmtClass, nstmts int) {
	a := p.a
	if c.tx == TxBegin && nstmts > 1 {
		// The transaction this text opens may write in a later statement of
		// the text or in a later query: on a replica that write would fail
		// with a READ ONLY error the client never asked for.
		c.primary("BEGIN in a multi-statement query: the transaction may write")
	}
	if c.role == RolePrimary && p.Role != RolePrimary {
		p.Role = RolePrimary
		a.roleWhy = c.why
	}
	if c.tx != TxNone {
		p.Tx = c.tx
	}
	p.Savepoint = p.Savepoint || c.savept
	if c.savecmd != nil && nstmts == 1 {
		p.SavepointCmd = c.savecmd
	}
	p.SetLocal = p.SetLocal || c.setLocal
	p.Sets = append(p.Sets, c.sets...)
	if p.Pin == "" {
		p.Pin = c.pin
	}
	p.Unpin = p.Unpin || c.unpin
	if c.dealloc != nil && nstmts == 1 {
		p.Deallocate = c.dealloc
	}
	if c.dealloc != nil && !c.dealloc.All && nstmts > 1 {
		p.Deallocates = append(p.Deallocates, c.dealloc.Name)
	}
	if c.err != nil && a.err == nil {
		a.err = c.err
	}
	if c.local != nil {
		p.Local, p.LocalCmd = true, *c.local
		if nstmts > 1 && a.err == nil {
			a.err = pgError(codeFeatureNotSupported, "pgrouter commands must be sent on their own, not in a multi-statement query", "")
		}
	}
}

// analyzeStmt builds the routing template of one statement.
func (r *Router) analyzeStmt(n *pg.Node, c *stmtClass, f *treeFacts) *stmtPlan {
	sp := &stmtPlan{onlyShard: -1, updVal: -1}
	if ps := n.GetPrepareStmt(); ps != nil {
		if t := r.firstSharded(f.rangeVars); t != nil {
			r.refusePrepare(sp, ps, t)
			return sp
		}
	}
	switch {
	case c.anyDst:
		sp.kind, sp.reason = spAny, "touches no table data"
	case c.dml:
		r.analyzeDML(n, sp, f)
	default:
		r.analyzeUtility(sp, f)
	}
	return sp
}

// analyzeUtility: DDL and other utility statements run on every shard
// (schemas must match), unless they only name tables of one shard.
func (r *Router) analyzeUtility(sp *stmtPlan, f *treeFacts) {
	sp.kind, sp.set, sp.multi = spFixed, r.all, r.all.Len() > 1
	sp.reason = "utility statement: every shard"
	only, named := -1, false
	for _, rv := range f.rangeVars {
		if t := r.shardedTableFor(rv); t != nil {
			named = true
			if sp.table == "" {
				sp.table = t.display
			}
			sp.ddlTables = append(sp.ddlTables, t.display)
			continue
		}
		kind, shard := r.relKind(rv)
		switch kind {
		case relUnlistedShard:
			only = shard
		case relReference, relUnlistedError:
			named = true
			if sp.table == "" {
				sp.table = relName(rv)
			}
		}
	}
	if only >= 0 && !named {
		sp.set, sp.multi = Only(only), false
		sp.reason = "utility statement on unlisted tables: shard " + r.shardNames[only]
	}
}

func (r *Router) analyzeDML(n *pg.Node, sp *stmtPlan, f *treeFacts) {
	b := &builder{r: r, sp: sp, ctes: map[string]bool{}, onlyShard: -1, updOcc: -1}
	b.stmt(n, -1, true)
	if b.fail == nil && b.seenShard != r.countSharded(f.rangeVars, b.ctes) {
		b.failf(codeFeatureNotSupported, "cannot route: a sharded table is used where pgrouter cannot follow its shard key")
	}
	switch {
	case b.fail != nil:
		sp.kind, sp.err, sp.keyUnsure = spErr, b.fail, b.keyFail
	case b.refWrite != "" && len(sp.occs) > 0:
		sp.kind, sp.err = spErr, pgError(codeFeatureNotSupported,
			fmt.Sprintf("statement writes reference table %q and reads sharded tables", b.refWrite),
			"split it into separate statements")
	case b.refWrite != "" && !r.refWrites:
		sp.kind, sp.err = spErr, pgError(codeFeatureNotSupported,
			fmt.Sprintf("write to reference table %q must reach every shard; refused", b.refWrite),
			"set reference_writes: best_effort for the database, or route it with /* pgrouter: shard=NAME */")
	case b.refWrite != "":
		sp.kind, sp.set, sp.multi, sp.table, sp.reference = spFixed, r.all, r.all.Len() > 1, b.refWrite, true
		sp.reason = "reference table write: every shard (best effort)"
	case len(sp.occs) == 0 && b.onlyShard >= 0:
		sp.kind, sp.set = spFixed, Only(b.onlyShard)
		sp.reason = fmt.Sprintf("unlisted table %s lives on shard %s", b.onlyTable, r.shardNames[b.onlyShard])
	case len(sp.occs) == 0:
		sp.kind, sp.reason = spAny, "no sharded table"
		if b.refRead {
			sp.reason = "reads reference tables only: any shard"
		}
	default:
		sp.kind, sp.onlyShard = spKeyed, b.onlyShard
		b.finishGroups()
		if b.multiInsertCTE {
			sp.insert, sp.oneShard = false, true
		}
	}
}

// countSharded counts the sharded-table references in a statement, so that a
// use the structured walk missed becomes an error instead of a wrong route.
func (r *Router) countSharded(rvs []*pg.RangeVar, ctes map[string]bool) int {
	c := 0
	for _, rv := range rvs {
		if rv.Schemaname == "" && ctes[rv.Relname] {
			continue
		}
		if r.shardedTableFor(rv) != nil {
			c++
		}
	}
	return c
}

// finishGroups turns the union-find into groups and picks the conditions
// that may narrow each group (see builder).
func (b *builder) finishGroups() {
	sp := b.sp
	idx := map[int32]int32{}
	sp.occGroup = make([]int32, len(sp.occs))
	for i := range sp.occs {
		root := b.find(int32(i))
		g, ok := idx[root]
		if !ok {
			g = int32(len(sp.groups))
			idx[root] = g
			t := sp.occs[i].t
			sp.groups = append(sp.groups, group{t: t, reason: "shard key " + t.display + "." + t.column})
		}
		sp.occGroup[i] = g
	}
	for gi := range sp.groups {
		positive := false
		for i, o := range sp.occs {
			if sp.occGroup[i] == int32(gi) && b.levels[o.level].positive {
				positive = true
			}
		}
		seen := map[int32]bool{}
		for i, o := range sp.occs {
			if sp.occGroup[i] != int32(gi) || seen[o.level] || (positive && !b.levels[o.level].positive) {
				continue
			}
			seen[o.level] = true
			sp.groups[gi].roots = append(sp.groups[gi].roots, b.levels[o.level].roots...)
		}
	}
	if b.updOcc >= 0 {
		sp.updGroup = sp.occGroup[b.updOcc]
	}
}

// localFallbackPlan plans SET pgrouter.NAME = WORD where WORD is a keyword.
func (r *Router) localFallbackPlan(p *Plan, name, value string) *Plan {
	var c stmtClass
	set := &pg.VariableSetStmt{Name: name, Kind: pg.VariableSetKind_VAR_SET_VALUE,
		Args: []*pg.Node{pg.MakeAConstStrNode(value, 0)}}
	r.localSet(set, name, &c)
	r.mergeClass(p, &c, 1)
	p.Stmts = 1
	p.a.stmts = []*stmtPlan{{kind: spAny, onlyShard: -1, reason: "pgrouter command"}}
	return p
}

// firstSharded is the first sharded table among rvs, or nil.
func (r *Router) firstSharded(rvs []*pg.RangeVar) *shardedTable {
	for _, rv := range rvs {
		if t := r.shardedTableFor(rv); t != nil {
			return t
		}
	}
	return nil
}

// refusePrepare: an SQL-level PREPARE runs on one shard (the session is
// pinned there) and every EXECUTE follows it whatever its parameters, so a
// statement on a sharded table would read or write rows of other shards'
// keys there. Refused; a shard hint may still route a read (the client
// chose the shard), never a write, whose rows' keys are unknown until
// EXECUTE.
func (r *Router) refusePrepare(sp *stmtPlan, ps *pg.PrepareStmt, t *shardedTable) {
	sp.kind = spErr
	sp.err = pgError(codeFeatureNotSupported,
		fmt.Sprintf("SQL PREPARE of a statement on sharded table %q is not supported: its EXECUTEs would all run on one shard whatever their parameters", t.display),
		"use the driver's prepared statements (the extended query protocol), which pgrouter routes at every execution")
	inner := r.classify(ps.Query, "")
	r.scanTree(ps.Query, &inner)
	sp.keyUnsure = inner.role == RolePrimary // writes (data-modifying CTEs and locking reads too)
}

// unparsedError refuses a multi-statement text the parser rejected. Sent to
// one shard's primary as a whole, a text Postgres accepts after all (its
// grammar differs from pg_query's in places, e.g. words reserved since 16)
// would run there, writes of other shards' rows included. Postgres parses a
// whole Query before running any of it, so for a real syntax error nothing
// is lost: the client gets the parser's error, with its position.
func unparsedError(err error) error {
	e := pgError(pgwire.SyntaxError, err.Error(),
		"pgrouter could not parse this multi-statement query, so it cannot tell where its statements must run; nothing was executed")
	var pe *pgparser.Error
	if errors.As(err, &pe) {
		e.Message, e.Position = pe.Message, int32(pe.Cursorpos)
	}
	return e
}

// countStatements counts the non-empty statements of sql as split by
// top-level semicolons (the lexer skips those in literals and comments).
func countStatements(sql string) int {
	n, empty := 0, true
	for i := 0; i < len(sql); {
		kind, j := nextToken(sql, i)
		switch {
		case kind == tkEOF:
			j = len(sql)
		case kind == tkOp && sql[i] == ';':
			if !empty {
				n++
			}
			empty = true
		case kind != tkSpace && kind != tkComment:
			empty = false
		}
		i = j
	}
	if !empty {
		n++
	}
	return n
}

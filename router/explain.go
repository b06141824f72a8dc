package router

import (
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

var txText = [...]string{"none", "BEGIN", "BEGIN READ ONLY", "SET TRANSACTION READ ONLY", "COMMIT", "ROLLBACK", "PREPARE TRANSACTION"}

// Explain describes in plain text how sql would be routed with the given
// text-format parameters ("NULL" stands for SQL NULL): shards, role, the
// predicate or hint that decided, session effects, or the error a client
// would get. It does not use or fill the plan cache.
func (r *Router) Explain(sql string, params []string) string {
	p, parsed, _ := r.buildPlan(sql)
	var args Args
	for _, v := range params {
		if v == "NULL" {
			args.Params = append(args.Params, nil)
		} else {
			args.Params = append(args.Params, []byte(v))
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "statement: %s\n", strings.Join(strings.Fields(sql), " "))
	if !parsed {
		b.WriteString("parse:     failed (sent to a primary so that Postgres reports the error)\n")
	}
	role := p.Role.String()
	if p.a.roleWhy != "" {
		role += " (" + p.a.roleWhy + ")"
	}
	fmt.Fprintf(&b, "role:      %s\n", role)
	if p.Tx != TxNone {
		fmt.Fprintf(&b, "tx:        %s\n", txText[p.Tx])
	}
	for _, s := range p.Sets {
		fmt.Fprintf(&b, "set:       %s\n", describeSet(s))
	}
	if p.Pin != "" {
		fmt.Fprintf(&b, "pins:      session to its backend (%s)\n", p.Pin)
	}
	if p.Local {
		fmt.Fprintf(&b, "local:     answered by pgrouter (%+v)\n", p.LocalCmd)
	}
	for i, sp := range p.a.stmts {
		if len(p.a.stmts) > 1 {
			fmt.Fprintf(&b, "statement %d: %s\n", i+1, r.describeStmt(sp))
		} else if sp.kind == spKeyed {
			fmt.Fprintf(&b, "keys:      %s\n", r.describeStmt(sp))
		}
	}
	rt, err := r.route(p, &args, Session{})
	if err != nil {
		b.WriteString(describeErr(err))
		return b.String()
	}
	fmt.Fprintf(&b, "shards:    %s", strings.Join(names(r, rt.Shards), ", "))
	switch {
	case rt.Any:
		b.WriteString(" (any one of them)")
	case rt.Split:
		b.WriteString(" (rows split per shard)")
	case rt.Multi:
		b.WriteString(" (every one of them)")
	}
	fmt.Fprintf(&b, "\nreason:    %s\n", rt.Reason)
	if rt.Multi && !rt.Split {
		e := rt.MultiShardError()
		fmt.Fprintf(&b, "note:      %s\n", e.Message)
	}
	return b.String()
}

func describeSet(s SetVar) string {
	switch {
	case s.All:
		return "RESET ALL"
	case s.Reset:
		return "RESET " + s.Name
	}
	return "SET " + s.Name + " TO " + s.Value
}

func describeErr(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		s := fmt.Sprintf("error:     %s %s\n", pe.Code, pe.Message)
		if pe.Hint != "" {
			s += fmt.Sprintf("hint:      %s\n", pe.Hint)
		}
		return s
	}
	return fmt.Sprintf("error:     %v\n", err)
}

func (r *Router) describeStmt(sp *stmtPlan) string {
	switch sp.kind {
	case spErr:
		return "error"
	case spAny:
		return sp.reason
	case spFixed:
		return sp.reason
	}
	var parts []string
	for gi, g := range sp.groups {
		var tables []string
		for i, o := range sp.occs {
			if sp.occGroup[i] == int32(gi) {
				tables = append(tables, o.t.display)
			}
		}
		desc := fmt.Sprintf("group %d [%s] keyed by %s", gi+1, strings.Join(tables, ", "), g.t.column)
		if len(g.roots) == 0 {
			desc += ": no restriction found"
		}
		parts = append(parts, desc)
	}
	return strings.Join(parts, "; ")
}

// names lists the shard names of a set, in shard order.
func names(r *Router, s ShardSet) []string {
	var out []string
	s.Each(func(i int) { out = append(out, r.shardNames[i]) })
	return out
}

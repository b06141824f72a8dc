package router

import (
	"fmt"
	"strconv"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"
)

// classifySet handles SET / RESET statements: session-level ones become
// SetVars the proxy replays on every backend it hands the client; SET LOCAL
// needs nothing; SET TRANSACTION READ ONLY is a transaction effect;
// SET pgrouter.* is answered by pgrouter itself.
func (r *Router) classifySet(s *pg.VariableSetStmt, text string, c *stmtClass) {
	name := strings.ToLower(s.Name)
	if strings.HasPrefix(name, "pgrouter.") {
		r.localSet(s, name, c)
		return
	}
	switch s.Kind {
	case pg.VariableSetKind_VAR_SET_MULTI:
		r.setMulti(s, name, c)
		return
	case pg.VariableSetKind_VAR_RESET_ALL:
		c.sets = []SetVar{{All: true, Reset: true}}
		return
	}
	if s.IsLocal {
		c.setLocal = true
		return
	}
	switch s.Kind {
	case pg.VariableSetKind_VAR_SET_VALUE:
		v, ok := setValue(s.Args, text)
		if !ok {
			c.pin = "SET " + name + " with a value pgrouter cannot replay"
			return
		}
		c.sets = []SetVar{{Name: name, Value: v}}
	case pg.VariableSetKind_VAR_SET_DEFAULT, pg.VariableSetKind_VAR_RESET:
		c.sets = []SetVar{{Name: name, Reset: true}}
	case pg.VariableSetKind_VAR_SET_CURRENT:
		c.pin = "SET " + name + " FROM CURRENT"
	}
}

// setMulti: SET TRANSACTION … and SET SESSION CHARACTERISTICS AS TRANSACTION ….
func (r *Router) setMulti(s *pg.VariableSetStmt, name string, c *stmtClass) {
	switch name {
	case "transaction":
		c.setLocal = true
		if txReadOnly(s.Args) {
			c.tx = TxSetReadOnly
		}
	case "session characteristics":
		for _, a := range s.Args {
			d := a.GetDefElem()
			if d == nil {
				continue
			}
			v, ok := setValue([]*pg.Node{d.Arg}, "")
			if !ok {
				c.pin = "SET SESSION CHARACTERISTICS"
				continue
			}
			c.sets = append(c.sets, SetVar{Name: "default_" + d.Defname, Value: v})
		}
	}
}

// setValue renders SET arguments as SQL text for "SET name TO <value>".
// Every word or string becomes a quoted literal ('public', '$user', 'on'),
// which Postgres accepts for every GUC; numbers stay bare.
func setValue(args []*pg.Node, text string) (string, bool) {
	var b strings.Builder
	for i, a := range args {
		if i > 0 {
			b.WriteString(", ")
		}
		if !writeSetArg(&b, a, text) {
			return "", false
		}
	}
	return b.String(), len(args) > 0
}

func writeSetArg(b *strings.Builder, a *pg.Node, text string) bool {
	if tc := a.GetTypeCast(); tc != nil {
		return writeTypeCastArg(b, tc, text)
	}
	switch {
	case a.GetAConst() != nil:
		k := a.GetAConst()
		switch {
		case k.GetIval() != nil:
			b.WriteString(strconv.FormatInt(int64(k.GetIval().Ival), 10))
		case k.GetFval() != nil:
			b.WriteString(k.GetFval().Fval)
		case k.GetSval() != nil:
			b.WriteString(quoteLiteral(k.GetSval().Sval))
		case k.GetBoolval() != nil:
			b.WriteString(quoteLiteral(strconv.FormatBool(k.GetBoolval().Boolval)))
		default:
			return false
		}
	case a.GetString_() != nil:
		b.WriteString(quoteLiteral(a.GetString_().Sval))
	case a.GetInteger() != nil:
		b.WriteString(strconv.FormatInt(int64(a.GetInteger().Ival), 10))
	case a.GetBoolean() != nil:
		b.WriteString(quoteLiteral(strconv.FormatBool(a.GetBoolean().Boolval)))
	case a.GetFloat() != nil:
		b.WriteString(a.GetFloat().Fval)
	default:
		return false
	}
	return true
}

// writeTypeCastArg renders SET TIME ZONE INTERVAL '…' [HOUR TO MINUTE] as the
// interval's text ('+02:00' works for timezone without the qualifier only
// for plain offsets, so anything with typmods is refused → pin).
func writeTypeCastArg(b *strings.Builder, tc *pg.TypeCast, _ string) bool {
	k := tc.Arg.GetAConst()
	if k == nil || k.GetSval() == nil || len(tc.TypeName.GetTypmods()) > 0 {
		return false
	}
	_, typ := lastName(tc.TypeName.GetNames())
	b.WriteString(typ)
	b.WriteByte(' ')
	b.WriteString(quoteLiteral(k.GetSval().Sval))
	return true
}

// quoteLiteral quotes s as a SQL string literal that reads the same whatever
// standard_conforming_strings is: E'…' when it holds a backslash.
func quoteLiteral(s string) string {
	q := strings.ReplaceAll(s, "'", "''")
	if strings.Contains(q, `\`) {
		return "E'" + strings.ReplaceAll(q, `\`, `\\`) + "'"
	}
	return "'" + q + "'"
}

// localSet validates SET/RESET pgrouter.role and pgrouter.shard.
func (r *Router) localSet(s *pg.VariableSetStmt, name string, c *stmtClass) {
	key := strings.TrimPrefix(name, "pgrouter.")
	cmd := &LocalCmd{Name: key}
	c.local = cmd
	var val string
	switch s.Kind {
	case pg.VariableSetKind_VAR_SET_VALUE:
		if len(s.Args) != 1 {
			c.err = pgError(codeInvalidParameter, fmt.Sprintf("SET %s takes one value", name), "")
			return
		}
		k := s.Args[0].GetAConst()
		switch {
		case k != nil && k.GetSval() != nil:
			val = k.GetSval().Sval
		case k != nil && k.GetIval() != nil:
			val = strconv.FormatInt(int64(k.GetIval().Ival), 10)
		default:
			c.err = pgError(codeInvalidParameter, fmt.Sprintf("invalid value for %s", name), "")
			return
		}
	case pg.VariableSetKind_VAR_SET_DEFAULT, pg.VariableSetKind_VAR_RESET:
	default:
		c.err = pgError(codeFeatureNotSupported, fmt.Sprintf("unsupported form of SET %s", name), "")
		return
	}
	switch key {
	case "role":
		v := strings.ToLower(val)
		if v != "" && v != "auto" && v != "primary" && v != "replica" {
			c.err = pgError(codeInvalidParameter, fmt.Sprintf("invalid value for parameter \"pgrouter.role\": %q", val),
				"Available values: auto, primary, replica.")
			return
		}
		cmd.Value = v
	case "shard":
		if val != "" && !strings.EqualFold(val, "default") && !r.shardHints {
			c.err = shardHintsOff("SET pgrouter.shard is")
			return
		}
		if val != "" && !strings.EqualFold(val, "default") {
			if _, ok := r.shardIdx[val]; !ok {
				c.err = pgError(codeInvalidParameter, fmt.Sprintf("invalid value for parameter \"pgrouter.shard\": %q", val),
					"Available shards: "+strings.Join(r.shardNames, ", ")+".")
				return
			}
			cmd.Value = val
		}
	default:
		c.err = unknownPgrouterParam(name)
	}
}

func (r *Router) localShow(name string, c *stmtClass) {
	key := strings.TrimPrefix(name, "pgrouter.")
	c.local = &LocalCmd{Show: true, Name: key}
	if key != "role" && key != "shard" && key != "all" {
		c.err = unknownPgrouterParam(name)
	}
}

func unknownPgrouterParam(name string) error {
	return pgError(codeUndefinedObject, fmt.Sprintf("unrecognized configuration parameter %q", name),
		"pgrouter understands pgrouter.role and pgrouter.shard.")
}

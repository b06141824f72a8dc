package merge

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"math/big"
	"strconv"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"
)

// havingCond is one `output <op> constant` conjunct of HAVING.
type havingCond struct {
	out int
	op  string // = <> < <= > >=
	lit literal
}

// literal is a constant from the query text.
type literal struct {
	text    string
	numeric bool // integer or decimal literal
	boolean bool // TRUE or FALSE (neither: a string literal)
}

var flipOp = map[string]string{"=": "=", "<>": "<>", "!=": "<>", "<": ">", "<=": ">=", ">": "<", ">=": "<="}

// having plans HAVING as a conjunction of comparisons between an aggregate
// (or group key) and a constant; anything else is refused.
func (a *analyzer) having(n *pg.Node) error {
	if n == nil {
		return nil
	}
	if be := n.GetBoolExpr(); be != nil && be.Boolop == pg.BoolExprType_AND_EXPR {
		for _, arg := range be.Args {
			if err := a.having(arg); err != nil {
				return err
			}
		}
		return nil
	}
	refuse := unsupported("this HAVING condition",
		"HAVING across shards supports AND of <aggregate or group column> <comparison> <constant>")
	ae := n.GetAExpr()
	if ae == nil || ae.Kind != pg.A_Expr_Kind_AEXPR_OP || len(ae.Name) != 1 || ae.Lexpr == nil {
		return refuse
	}
	op, ok := flipOp[ae.Name[0].GetString_().GetSval()]
	if !ok {
		return refuse
	}
	operand := ae.Lexpr
	lit, ok := literalOf(ae.Rexpr)
	if ok {
		op = flipOp[op] // flipOp twice is the identity, with != normalised to <>
	} else if lit, ok = literalOf(ae.Lexpr); ok {
		operand = ae.Rexpr
	} else {
		return refuse
	}
	out, err := a.outFor(operand, false)
	if err != nil {
		return err
	}
	a.plan.agg.having = append(a.plan.agg.having, havingCond{out: out, op: op, lit: lit})
	return nil
}

// literalOf reads a constant: a number (possibly negated), a string, a
// boolean, or one of those with a cast.
func literalOf(n *pg.Node) (literal, bool) {
	if tc := n.GetTypeCast(); tc != nil {
		return literalOf(tc.Arg)
	}
	if ae := n.GetAExpr(); ae != nil && ae.Lexpr == nil && len(ae.Name) == 1 &&
		ae.Name[0].GetString_().GetSval() == "-" {
		l, ok := literalOf(ae.Rexpr)
		if !ok || !l.numeric {
			return literal{}, false
		}
		if strings.HasPrefix(l.text, "-") {
			return literal{text: l.text[1:], numeric: true}, true
		}
		return literal{text: "-" + l.text, numeric: true}, true
	}
	c := n.GetAConst()
	if c == nil || c.Isnull {
		return literal{}, false
	}
	switch v := c.Val.(type) {
	case *pg.A_Const_Ival:
		return literal{text: strconv.FormatInt(int64(v.Ival.Ival), 10), numeric: true}, true
	case *pg.A_Const_Fval:
		return literal{text: v.Fval.Fval, numeric: true}, true
	case *pg.A_Const_Sval:
		return literal{text: v.Sval.Sval}, true
	case *pg.A_Const_Boolval:
		return literal{text: strconv.FormatBool(v.Boolval.Boolval), boolean: true}, true
	}
	return literal{}, false
}

// holds evaluates `v op lit` for a value of type oid; NULL never holds.
func (c havingCond) holds(v value, oid uint32) (bool, error) {
	if v.null {
		return false, nil
	}
	cmp, err := compareLiteral(v, oid, c.lit)
	if err != nil {
		return false, err
	}
	switch c.op {
	case "=":
		return cmp == 0, nil
	case "<>":
		return cmp != 0, nil
	case "<":
		return cmp < 0, nil
	case "<=":
		return cmp <= 0, nil
	case ">":
		return cmp > 0, nil
	}
	return cmp >= 0, nil
}

// compareLiteral compares a value with a constant converted to its type.
func compareLiteral(v value, oid uint32, lit literal) (int, error) {
	bad := func() (int, error) {
		return 0, unsupported(fmt.Sprintf("HAVING comparison of %s with %q", typeName(oid), lit.text), "")
	}
	// A string literal that does not read as the column's type fails in
	// Postgres with 22P02; say the same rather than "not supported".
	badInput := func() (int, error) {
		if lit.numeric || lit.boolean {
			return bad()
		}
		return 0, pgErr(codeInvalidText, "", "invalid input syntax for type %s: %q", typeName(oid), lit.text)
	}
	switch v.k {
	case kindInt, kindNumeric:
		text := strings.TrimSpace(lit.text)
		if v.k == kindInt && !lit.numeric && strings.ContainsAny(text, ".eE") {
			return badInput() // '5.5' is read as the integer type, and fails
		}
		d, err := literalDecimal(text)
		if err != nil {
			return badInput()
		}
		if v.k == kindInt {
			return decimalFromInt(v.i).cmp(d), nil
		}
		return v.d.cmp(d), nil
	case kindFloat:
		f, err := parseFloatText(lit.text)
		if err != nil {
			return badInput()
		}
		return compare(v, value{k: kindFloat, f: f}), nil
	case kindBool:
		if lit.numeric {
			return bad()
		}
		b, err := strconv.ParseBool(lit.text)
		if err != nil {
			return bad() // Postgres also reads 'yes', 'on', 't', …
		}
		var i int64
		if b {
			i = 1
		}
		return cmpOrdered(v.i, i), nil
	case kindBytes:
		if lit.numeric || lit.boolean {
			return bad() // Postgres: no operator text = integer
		}
		if oid == oidUUID {
			return compareUUID(v.b, lit.text, bad)
		}
		// The literal must be read as a value of the column's kind: a
		// zero-kind value would decode to nothing and compare as ''.
		l := value{k: kindBytes}
		if err := l.decodeText(oid, lit.text); err != nil {
			return bad()
		}
		return compare(v, l), nil
	case kindTime:
		text := lit.text
		if oid == oidTimestamp && !strings.Contains(text, " ") {
			text += " 00:00:00" // '2025-01-10' is midnight as a timestamp
		}
		t, err := parseTimeText(oid, text)
		if err != nil {
			return bad()
		}
		return cmpOrdered(v.i, t), nil
	}
	return bad()
}

// literalDecimal reads an integer or decimal literal, with an exponent too.
func literalDecimal(s string) (*decimal, error) {
	if !strings.ContainsAny(s, "eE") {
		return parseNumeric(s)
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return nil, fmt.Errorf("bad number %q", s)
	}
	return parseNumeric(r.FloatString(40))
}

// compareUUID compares a uuid cell (16 bytes in binary format, canonical
// text otherwise) with a uuid literal in any spelling Postgres accepts
// for it (upper case, braces, no hyphens).
func compareUUID(cell []byte, lit string, bad func() (int, error)) (int, error) {
	want, ok := uuidBytes(lit)
	if !ok {
		return bad()
	}
	got := cell
	if len(cell) != 16 {
		if got, ok = uuidBytes(string(cell)); !ok {
			return bad()
		}
	}
	return bytes.Compare(got, want), nil
}

// uuidBytes parses the 32 hex digits of a uuid, ignoring hyphens and braces.
func uuidBytes(s string) ([]byte, bool) {
	s = strings.NewReplacer("-", "", "{", "", "}", "").Replace(s)
	if len(s) != 32 {
		return nil, false
	}
	b, err := hex.DecodeString(s)
	return b, err == nil
}

package router

import (
	"sort"
	"strconv"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"
)

// SplitInsert cuts a multi-row INSERT … VALUES whose rows belong to several
// shards (Route.Split) into one INSERT per shard. Everything around the rows
// (column list, ON CONFLICT, RETURNING) is kept in every part; parameters are
// renumbered $1..$n per part. For a simple-protocol query pass Args{}.
func (r *Router) SplitInsert(sql string, args Args, s Session) ([]InsertPart, error) {
	if nr := r.moved(); nr != nil {
		return nr.SplitInsert(sql, args, s)
	}
	notSplittable := pgError(codeFeatureNotSupported, "statement is not a single multi-row INSERT … VALUES", "")
	if s.NonStandardStrings { // cut the rows as the backend lexes them; the parts read the same in both modes
		std, err := backendText(sql, true)
		if err != nil {
			return nil, err
		}
		sql = std
	}
	res, err := pg.Parse(sql)
	if err != nil || len(res.Stmts) != 1 || res.Stmts[0].Stmt.GetInsertStmt() == nil {
		return nil, notSplittable
	}
	p, _ := r.Prepare(sql)
	if p.a.err != nil {
		return nil, p.a.err
	}
	sp := p.a.stmts[0]
	if sp.kind == spErr {
		return nil, sp.err
	}
	if sp.kind != spKeyed || !sp.insert {
		return nil, notSplittable
	}
	prefix, rows, suffix, ok := valuesRows(sql)
	leaf := &sp.conds[sp.rowsLeaf]
	if !ok || int(leaf.n) != len(rows) {
		return nil, notSplittable
	}
	t := sp.occs[leaf.occ].t
	byShard := map[int][]string{}
	positions := map[int][]int{}
	for i, row := range rows {
		set, err := r.valSet(&sp.vals[leaf.first+int32(i)], t, &args)
		if err != nil {
			return nil, err
		}
		byShard[set.First()] = append(byShard[set.First()], row)
		positions[set.First()] = append(positions[set.First()], i)
	}
	parts := make([]InsertPart, 0, len(byShard))
	for shard, rs := range byShard {
		part := renumber(prefix+strings.Join(rs, ", ")+suffix, &args)
		part.Shard, part.Rows = shard, positions[shard]
		parts = append(parts, part)
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i].Shard < parts[j].Shard })
	return parts, nil
}

// valuesRows finds the rows of the top-level VALUES list: the text before the
// first row, each "( … )" row, and the text after the last one.
func valuesRows(sql string) (prefix string, rows []string, suffix string, ok bool) {
	depth, start, end := 0, -1, 0
	for i := 0; i < len(sql); {
		kind, j := nextToken(sql, i)
		if kind == tkEOF || kind == tkBad {
			break
		}
		if kind == tkOp {
			switch sql[i] {
			case '(':
				if depth == 0 && start >= 0 {
					if len(rows) == 0 {
						prefix = sql[:i]
					}
					rowStart := i
					d := 0
					for k := i; k < len(sql); {
						kk, e := nextToken(sql, k)
						if kk == tkEOF || kk == tkBad {
							return "", nil, "", false
						}
						if kk == tkOp && sql[k] == '(' {
							d++
						} else if kk == tkOp && sql[k] == ')' {
							d--
							if d == 0 {
								rows = append(rows, sql[rowStart:e])
								j, end = e, e
								break
							}
						}
						k = e
					}
					i = j
					continue
				}
				depth++
			case ')':
				depth--
			case ',':
			default:
				if start >= 0 && len(rows) > 0 {
					return prefix, rows, sql[end:], true
				}
			}
		}
		if kind == tkIdent && depth == 0 {
			if start < 0 && equalFoldASCII(sql[i:j], "values") {
				start = j
			} else if start >= 0 && len(rows) > 0 {
				return prefix, rows, sql[end:], true
			}
		}
		i = j
	}
	if len(rows) == 0 {
		return "", nil, "", false
	}
	return prefix, rows, sql[end:], true
}

// renumber rewrites $n references to $1..$k in order of first use and picks
// the matching parameters, formats and types.
func renumber(text string, args *Args) InsertPart {
	var b strings.Builder
	newNum := map[int]int{}
	var part InsertPart
	for i := 0; i < len(text); {
		kind, j := nextToken(text, i)
		if kind == tkEOF {
			break
		}
		if kind != tkParam {
			b.WriteString(text[i:j])
			i = j
			continue
		}
		old, _ := strconv.Atoi(text[i+1 : j])
		n, seen := newNum[old]
		if !seen {
			n = len(newNum) + 1
			newNum[old] = n
			k := old - 1
			if k < len(args.Params) {
				part.Params = append(part.Params, args.Params[k])
			}
			if len(args.Formats) > 1 {
				part.Formats = append(part.Formats, paramFormat(args.Formats, k))
			}
			if len(args.ParamOIDs) > 0 {
				var oid uint32
				if k < len(args.ParamOIDs) {
					oid = args.ParamOIDs[k]
				}
				part.ParamOIDs = append(part.ParamOIDs, oid)
			}
		}
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(n))
		i = j
	}
	if len(args.Formats) == 1 {
		part.Formats = args.Formats
	}
	part.SQL = b.String()
	return part
}

// SplitStatements cuts a simple-protocol text into its statements (each
// without its terminating ';'), for a proxy that must run them one by one
// on different shards. It parses the text (no plan cache): callers use it
// only on the multi-shard path.
func SplitStatements(sql string) ([]string, error) {
	return pg.SplitWithParser(sql, true)
}

// StatementSpans returns where each statement of a simple-protocol text
// starts and ends (byte offsets, the terminating ';' not included), as
// Postgres cuts it. It parses the text (no plan cache): for rare paths.
func StatementSpans(sql string) ([][2]int, error) {
	res, err := pg.Parse(sql)
	if err != nil {
		return nil, err
	}
	spans := make([][2]int, len(res.Stmts))
	for i, raw := range res.Stmts {
		start := int(raw.StmtLocation)
		end := len(sql) // the last statement's length is 0: up to the end
		if raw.StmtLen > 0 {
			end = start + int(raw.StmtLen)
		}
		spans[i] = [2]int{start, end}
	}
	return spans, nil
}

// SplitStatementsFor is SplitStatements for a text of session s: with
// standard_conforming_strings off the text is cut where the backend cuts it
// (a ';' after 'a\' is inside a literal), and the pieces are returned in a
// form that reads the same with the setting on or off (see EscapedText).
func SplitStatementsFor(sql string, s Session) ([]string, error) {
	if s.NonStandardStrings {
		std, err := backendText(sql, true)
		if err != nil {
			return nil, err
		}
		sql = std
	}
	return SplitStatements(sql)
}

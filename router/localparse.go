package router

import "strings"

// localFallback recognises pgrouter commands that Postgres's grammar
// rejects, such as SET pgrouter.role = primary (PRIMARY is a reserved word).
// Only the shape SET [SESSION] pgrouter.NAME {=|TO} WORD [;] is accepted.
func localFallback(sql string) (name, value string, ok bool) {
	var toks []string
	for i := 0; i < len(sql); {
		kind, j := nextToken(sql, i)
		switch kind {
		case tkEOF:
			i = len(sql)
			continue
		case tkSpace, tkComment:
		case tkIdent, tkOp:
			toks = append(toks, sql[i:j])
		case tkString:
			toks = append(toks, strings.ReplaceAll(sql[i+1:j-1], "''", "'"))
		default:
			return "", "", false
		}
		i = j
	}
	if len(toks) > 0 && toks[len(toks)-1] == ";" {
		toks = toks[:len(toks)-1]
	}
	if len(toks) > 0 && strings.EqualFold(toks[0], "set") {
		toks = toks[1:]
	}
	if len(toks) > 0 && strings.EqualFold(toks[0], "session") {
		toks = toks[1:]
	}
	if len(toks) != 5 || !strings.EqualFold(toks[0], "pgrouter") || toks[1] != "." ||
		!(toks[3] == "=" || strings.EqualFold(toks[3], "to")) {
		return "", "", false
	}
	return "pgrouter." + strings.ToLower(toks[2]), toks[4], true
}

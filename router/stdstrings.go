package router

import "strings"

// The router must read a text exactly as the backend will. Two things make
// pg_query (and a plain lexer) read it differently, and backendText rewrites
// the text so that they read it the same — only for planning (and for the
// per-shard parts of a split INSERT, which read the same in either form); the
// backend always receives the client's text:
//
//   - standard_conforming_strings = off: Postgres reads every plain '…'
//     literal with backslash escapes, as if written E'…'. Each plain literal
//     gains the E prefix.
//   - 'a' -- comment <newline> 'b' is one literal to Postgres 15 but a
//     syntax error to pg_query's newer grammar, which would leave the text
//     unplanned; the comments between the segments of a continued literal
//     are dropped.

// backendText returns sql as pg_query must read it (backslash: the
// session's standard_conforming_strings is off). U&'…' literals are refused
// in that mode, as Postgres refuses them.
func backendText(sql string, backslash bool) (string, error) {
	if strings.IndexByte(sql, '\'') < 0 {
		return sql, nil
	}
	var b strings.Builder
	b.Grow(len(sql) + 16)
	for i := 0; i < len(sql); {
		kind, j := nextTokenMode(sql, i, backslash)
		if kind == tkEOF {
			break
		}
		tok := sql[i:j]
		if kind != tkString && kind != tkXString {
			b.WriteString(tok)
			i = j
			continue
		}
		q := strings.IndexByte(tok, '\'')
		prefix := tok[:q] // "", E, B, X, N or U&
		escapes := strings.EqualFold(prefix, "e") || backslash && (prefix == "" || strings.EqualFold(prefix, "n"))
		switch {
		case backslash && strings.EqualFold(prefix, "u&"):
			return "", pgError(codeFeatureNotSupported, "unsafe use of string constant with Unicode escapes",
				"String constants with Unicode escapes cannot be used when standard_conforming_strings is off.")
		case backslash && prefix == "":
			b.WriteString(" E") // the space keeps int'5' a typed literal, not the identifier inte
		case backslash && strings.EqualFold(prefix, "n"):
			b.WriteString(" nchar E") // N'…' is the keyword NCHAR and a plain literal
		default:
			b.WriteString(prefix)
		}
		writeJoined(&b, tok[q:], escapes)
		i = j
	}
	return b.String(), nil
}

// writeJoined writes the literal lit ('…' segments, possibly continued) with
// each gap between segments reduced to one newline.
func writeJoined(b *strings.Builder, lit string, escapes bool) {
	start := 0
	for k := 1; k < len(lit); k++ {
		switch {
		case lit[k] == '\\' && escapes:
			k++
		case lit[k] == '\'' && k+1 < len(lit) && lit[k+1] == '\'':
			k++
		case lit[k] == '\'':
			c := stringContinues(lit, k+1)
			if c < 0 {
				b.WriteString(lit[start:])
				return
			}
			b.WriteString(lit[start : k+1])
			b.WriteByte('\n')
			start, k = c, c
		}
	}
	b.WriteString(lit[start:])
}

// EscapedText returns sql rewritten for a session whose
// standard_conforming_strings is off into text that reads the same whatever
// the setting: plain literals become E'…'. The proxy Parses this text, so
// that a backend — or a statement prepared there under the other setting —
// reads it exactly as the router planned it.
func EscapedText(sql string) (string, error) { return backendText(sql, true) }

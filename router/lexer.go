package router

// A small hand-written SQL lexer. It understands just enough of Postgres's
// lexical rules (comments, nested block comments, 'strings', E'' / B'' / X''
// / N'' / U&'' strings, $tag$ dollar quotes, "quoted identifiers", numbers,
// $n parameters) to (1) lift inline literals into parameters so repeated
// query shapes share one cached plan, (2) find pgrouter hints in comments and
// never inside literals, and (3) cut INSERT … VALUES rows apart.

type tokKind uint8

const (
	tkEOF     tokKind = iota
	tkSpace           // whitespace
	tkComment         // -- … or /* … */
	tkString          // '…' (standard-conforming): liftable
	tkXString         // E'…', B'…', X'…', N'…', U&'…': kept verbatim
	tkDollar          // $tag$…$tag$: liftable
	tkNumber          // 42, 4.2, 1e5, 0x1F, 1_000
	tkParam           // $1
	tkIdent           // identifier or keyword
	tkQIdent          // "quoted identifier"
	tkOp              // any other single byte ( ) , ; : . = + …
	tkBad             // unterminated literal or comment
)

// nextToken returns the kind and end offset of the token starting at i,
// lexed as Postgres does with standard_conforming_strings = on.
func nextToken(s string, i int) (tokKind, int) { return nextTokenMode(s, i, false) }

// nextTokenMode is nextToken; backslash lexes as standard_conforming_strings
// = off does: plain '…' (and N'…') strings take backslash escapes like E'…'.
func nextTokenMode(s string, i int, backslash bool) (tokKind, int) {
	if i >= len(s) {
		return tkEOF, i
	}
	c := s[i]
	switch {
	case isSpaceByte(c):
		j := i + 1
		for j < len(s) && isSpaceByte(s[j]) {
			j++
		}
		return tkSpace, j
	case c == '-' && i+1 < len(s) && s[i+1] == '-':
		j := i + 2
		for j < len(s) && s[j] != '\n' && s[j] != '\r' {
			j++
		}
		return tkComment, j
	case c == '/' && i+1 < len(s) && s[i+1] == '*':
		return lexBlockComment(s, i)
	case c == '\'' && backslash:
		return lexEString(s, i)
	case c == '\'':
		return lexQuoted(s, i, '\'', tkString)
	case c == '"':
		return lexQuoted(s, i, '"', tkQIdent)
	case c == '$':
		return lexDollar(s, i)
	case isDigit(c) || (c == '.' && i+1 < len(s) && isDigit(s[i+1])):
		return tkNumber, lexNumber(s, i)
	case isIdentStart(c):
		return lexIdent(s, i, backslash)
	}
	return tkOp, i + 1
}

func lexBlockComment(s string, i int) (tokKind, int) {
	depth, j := 0, i
	for j+1 < len(s) {
		switch {
		case s[j] == '/' && s[j+1] == '*':
			depth++
			j += 2
		case s[j] == '*' && s[j+1] == '/':
			depth--
			j += 2
			if depth == 0 {
				return tkComment, j
			}
		default:
			j++
		}
	}
	return tkBad, len(s)
}

// lexQuoted scans q…q where qq stands for one q. A '…' literal followed
// by whitespace holding a newline and another '…' is one literal to
// Postgres ('a'<newline>'b' is 'ab'): the token spans both, and its kind
// becomes tkXString so that it is kept verbatim, never lifted.
func lexQuoted(s string, i int, q byte, kind tokKind) (tokKind, int) {
	j := i + 1
	for j < len(s) {
		if s[j] == q {
			if j+1 < len(s) && s[j+1] == q {
				j += 2
				continue
			}
			if q == '\'' {
				if c := stringContinues(s, j+1); c >= 0 {
					j, kind = c+1, tkXString
					continue
				}
			}
			return kind, j + 1
		}
		j++
	}
	return tkBad, len(s)
}

// lexEString scans E'…' where backslash escapes the next byte (continued
// segments, as in lexQuoted, keep the backslash rules).
func lexEString(s string, i int) (tokKind, int) {
	j := i + 1
	for j < len(s) {
		switch s[j] {
		case '\\':
			j += 2
			continue
		case '\'':
			if j+1 < len(s) && s[j+1] == '\'' {
				j += 2
				continue
			}
			if c := stringContinues(s, j+1); c >= 0 {
				j = c + 1
				continue
			}
			return tkXString, j + 1
		}
		j++
	}
	return tkBad, len(s)
}

// stringContinues returns the offset of the quote that continues a string
// literal ending at j, or -1. The rule is Postgres 15's (scan.l
// quotecontinue): spaces and "--" comments, at least one newline, then the
// quote. (pg_query's newer grammar no longer allows the comments; see
// backendText.)
func stringContinues(s string, j int) int {
	k, newline := j, false
	for k < len(s) {
		switch c := s[k]; {
		case c == '\n' || c == '\r':
			newline = true
			k++
		case isSpaceByte(c):
			k++
		case c == '-' && k+1 < len(s) && s[k+1] == '-':
			k += 2
			for k < len(s) && s[k] != '\n' && s[k] != '\r' {
				k++
			}
		case c == '\'' && newline:
			return k
		default:
			return -1
		}
	}
	return -1
}

func lexDollar(s string, i int) (tokKind, int) {
	j := i + 1
	if j < len(s) && isDigit(s[j]) {
		for j < len(s) && isDigit(s[j]) {
			j++
		}
		return tkParam, j
	}
	for j < len(s) && s[j] != '$' && isIdentCont(s[j]) && s[j] != '$' {
		j++
	}
	if j >= len(s) || s[j] != '$' {
		return tkOp, i + 1
	}
	tag := s[i : j+1]
	for k := j + 1; k+len(tag) <= len(s); k++ {
		if s[k] == '$' && s[k:k+len(tag)] == tag {
			return tkDollar, k + len(tag)
		}
	}
	return tkBad, len(s)
}

func lexNumber(s string, i int) int {
	j := i
	if s[j] == '0' && j+1 < len(s) && (s[j+1]|0x20 == 'x' || s[j+1]|0x20 == 'o' || s[j+1]|0x20 == 'b') {
		j += 2
		for j < len(s) && (isHex(s[j]) || s[j] == '_') {
			j++
		}
		return j
	}
	for j < len(s) && (isDigit(s[j]) || s[j] == '_') {
		j++
	}
	if j < len(s) && s[j] == '.' && !(j+1 < len(s) && s[j+1] == '.') {
		j++
		for j < len(s) && (isDigit(s[j]) || s[j] == '_') {
			j++
		}
	}
	if j < len(s) && s[j]|0x20 == 'e' {
		k := j + 1
		if k < len(s) && (s[k] == '+' || s[k] == '-') {
			k++
		}
		if k < len(s) && isDigit(s[k]) {
			for k < len(s) && isDigit(s[k]) {
				k++
			}
			j = k
		}
	}
	return j
}

func lexIdent(s string, i int, backslash bool) (tokKind, int) {
	// String-literal prefixes: E'…', B'…', X'…', N'…', U&'…'.
	if i+1 < len(s) && s[i+1] == '\'' {
		switch s[i] | 0x20 {
		case 'e':
			return lexEString(s, i+1)
		case 'n':
			if backslash { // N'…' is NCHAR followed by a plain string
				return lexEString(s, i+1)
			}
			return lexQuoted(s, i+1, '\'', tkXString)
		case 'b', 'x':
			k, j := lexQuoted(s, i+1, '\'', tkXString)
			return k, j
		}
	}
	if s[i]|0x20 == 'u' && i+2 < len(s) && s[i+1] == '&' && (s[i+2] == '\'' || s[i+2] == '"') {
		if s[i+2] == '"' {
			return lexQuoted(s, i+2, '"', tkQIdent)
		}
		return lexQuoted(s, i+2, '\'', tkXString)
	}
	j := i + 1
	for j < len(s) && isIdentCont(s[j]) {
		j++
	}
	return tkIdent, j
}

func isSpaceByte(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}
func isDigit(c byte) bool      { return c >= '0' && c <= '9' }
func isHex(c byte) bool        { return isDigit(c) || (c|0x20 >= 'a' && c|0x20 <= 'f') }
func isIdentStart(c byte) bool { return c == '_' || (c|0x20 >= 'a' && c|0x20 <= 'z') || c >= 0x80 }
func isIdentCont(c byte) bool  { return isIdentStart(c) || isDigit(c) || c == '$' }

// equalFoldASCII compares an identifier token with a lower-case keyword.
func equalFoldASCII(tok, kw string) bool {
	if len(tok) != len(kw) {
		return false
	}
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if c >= 'A' && c <= 'Z' {
			c |= 0x20
		}
		if c != kw[i] {
			return false
		}
	}
	return true
}

package router

import (
	"strconv"
	"strings"
	"unsafe"
)

// Scratch is per-session reusable memory for RouteSimple: the normalised
// text and the literals lifted out of it. Not safe for concurrent use; the
// zero value is ready.
type Scratch struct {
	buf    []byte   // normalised statement text
	params [][]byte // lifted literal values (text format), aliasing the SQL or unq
	unq    []byte   // unescaped string literals ('it''s' → it's)
}

// maxLifted bounds the literals lifted from one text (Postgres allows 65535 params).
const maxLifted = 65535

// normalise writes sql with its inline literals replaced by $1, $2… into
// sc.buf and their text values into sc.params. Comments are dropped except
// pgrouter hints, which are part of the plan and so of the cache key.
// It returns false when the text must be planned as it is: utility
// statements (SET and friends keep their values), texts that already hold
// $n, or anything the lexer cannot follow.
func normalise(sql string, sc *Scratch) bool {
	sc.buf = sc.buf[:0]
	sc.params = sc.params[:0]
	if cap(sc.unq) < len(sql) {
		sc.unq = make([]byte, 0, len(sql)) // never grows below: params alias it
	}
	sc.unq = sc.unq[:0]
	if !liftableStart(sql) {
		return false
	}
	for i := 0; i < len(sql); {
		kind, j := nextToken(sql, i)
		switch kind {
		case tkParam, tkBad:
			return false
		case tkComment:
			if isHintComment(sql[i:j]) {
				sc.buf = append(sc.buf, sql[i:j]...)
				if sql[i] == '-' {
					sc.buf = append(sc.buf, '\n')
				}
			} else {
				sc.buf = append(sc.buf, ' ')
			}
		case tkNumber:
			if !sc.lift(bytesOf(sql[i:j])) {
				return false
			}
		case tkString:
			if !sc.lift(sc.unquote(sql[i+1 : j-1])) {
				return false
			}
		case tkDollar:
			tag := strings.IndexByte(sql[i+1:], '$') + 2
			if !sc.lift(bytesOf(sql[i+tag : j-tag])) {
				return false
			}
		default:
			sc.buf = append(sc.buf, sql[i:j]...)
		}
		i = j
	}
	return true
}

func (sc *Scratch) lift(v []byte) bool {
	if len(sc.params) >= maxLifted {
		return false
	}
	sc.params = append(sc.params, v)
	if n := len(sc.buf); n > 0 && isIdentCont(sc.buf[n-1]) {
		sc.buf = append(sc.buf, ' ') // int'5' → int $1, not the identifier int$1
	}
	sc.buf = append(sc.buf, '$')
	sc.buf = strconv.AppendInt(sc.buf, int64(len(sc.params)), 10)
	return true
}

// unquote returns the value of a standard string body (” → ').
func (sc *Scratch) unquote(body string) []byte {
	if strings.IndexByte(body, '\'') < 0 {
		return bytesOf(body)
	}
	start := len(sc.unq)
	for i := 0; i < len(body); i++ {
		sc.unq = append(sc.unq, body[i])
		if body[i] == '\'' {
			i++ // skip the doubled quote
		}
	}
	return sc.unq[start:len(sc.unq):len(sc.unq)]
}

// bytesOf views a string as bytes without copying; callers never write to it.
func bytesOf(s string) []byte {
	if s == "" {
		return []byte{}
	}
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

// liftableStart reports whether the first keyword starts a DML query, the
// only statements whose literals may be lifted without changing their plan.
func liftableStart(sql string) bool {
	for i := 0; i < len(sql); {
		kind, j := nextToken(sql, i)
		switch kind {
		case tkSpace, tkComment:
		case tkOp:
			if sql[i] != '(' {
				return false
			}
		case tkIdent:
			w := sql[i:j]
			return equalFoldASCII(w, "select") || equalFoldASCII(w, "insert") ||
				equalFoldASCII(w, "update") || equalFoldASCII(w, "delete") ||
				equalFoldASCII(w, "with") || equalFoldASCII(w, "values") ||
				equalFoldASCII(w, "table")
		default:
			return false
		}
		i = j
	}
	return false
}

// Shape returns sql with its inline literals replaced by $1, $2… — what a
// log may show of a statement without printing values. "" when the text is
// not a plain query the lexer can follow (utility statements keep values).
func Shape(sql string) string {
	var sc Scratch
	if normalise(sql, &sc) {
		return string(sc.buf)
	}
	return ""
}

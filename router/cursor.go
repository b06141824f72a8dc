package router

import (
	"math"

	pg "github.com/pganalyze/pg_query_go/v6"
)

// SQL cursors (DECLARE / FETCH / MOVE / CLOSE) over several shards are run
// by the proxy itself: it merges the cursor's SELECT once and hands out
// its rows. CursorStmt describes one such statement; ParseCursor reads it.

// CursorKind says which cursor statement a CursorStmt is.
type CursorKind byte

const (
	CursorDeclare CursorKind = 'D'
	CursorFetch   CursorKind = 'F'
	CursorMove    CursorKind = 'M'
	CursorClose   CursorKind = 'C'
)

// CursorStmt is a DECLARE, FETCH, MOVE or CLOSE statement.
type CursorStmt struct {
	Kind    CursorKind
	Name    string // the cursor ("" for CLOSE ALL)
	Query   string // DECLARE: the text of its SELECT
	Options int32  // DECLARE: CURSOR_OPT_* flags
	Count   int64  // FETCH / MOVE forward: how many rows (math.MaxInt64: ALL)
	Forward bool   // FETCH / MOVE: NEXT, FORWARD n, n or ALL (the only directions a merged cursor serves)
}

// CURSOR_OPT_* of parsenodes.h that a merged cursor cannot honour.
const (
	CursorBinary = 0x0001
	CursorScroll = 0x0002
)

// ParseCursor reads sql as one cursor statement; ok is false for anything else.
func ParseCursor(sql string) (c CursorStmt, ok bool) {
	kw := firstKeyword(sql)
	if !equalFoldASCII(kw, "declare") && !equalFoldASCII(kw, "fetch") && !equalFoldASCII(kw, "move") && !equalFoldASCII(kw, "close") {
		return c, false
	}
	res, err := pg.Parse(sql)
	if err != nil || len(res.Stmts) != 1 {
		return c, false
	}
	switch s := res.Stmts[0].Stmt.Node.(type) {
	case *pg.Node_DeclareCursorStmt:
		q, found := declaredQuery(sql)
		if !found {
			return c, false
		}
		return CursorStmt{Kind: CursorDeclare, Name: s.DeclareCursorStmt.Portalname, Query: q, Options: s.DeclareCursorStmt.Options}, true
	case *pg.Node_FetchStmt:
		f := s.FetchStmt
		c = CursorStmt{Kind: CursorFetch, Name: f.Portalname, Count: f.HowMany,
			Forward: f.Direction == pg.FetchDirection_FETCH_FORWARD && f.HowMany > 0}
		if f.Ismove {
			c.Kind = CursorMove
		}
		return c, true
	case *pg.Node_ClosePortalStmt:
		return CursorStmt{Kind: CursorClose, Name: s.ClosePortalStmt.Portalname}, true
	}
	return c, false
}

// FetchAll is the Count of FETCH ALL.
const FetchAll = math.MaxInt64

// firstKeyword is the first identifier of sql, after spaces and comments.
func firstKeyword(sql string) string {
	for i := 0; i < len(sql); {
		kind, j := nextToken(sql, i)
		switch kind {
		case tkSpace, tkComment:
			i = j
			continue
		case tkIdent:
			return sql[i:j]
		}
		return ""
	}
	return ""
}

// declaredQuery is the text after DECLARE … CURSOR [WITH[OUT] HOLD] FOR.
func declaredQuery(sql string) (string, bool) {
	prev := ""
	for i := 0; i < len(sql); {
		kind, j := nextToken(sql, i)
		if kind == tkEOF || kind == tkBad {
			return "", false
		}
		if kind == tkIdent {
			word := sql[i:j]
			if equalFoldASCII(word, "for") && (equalFoldASCII(prev, "cursor") || equalFoldASCII(prev, "hold")) {
				return sql[j:], true
			}
			prev = word
		} else if kind != tkSpace && kind != tkComment {
			prev = ""
		}
		i = j
	}
	return "", false
}

package proxy

import (
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/pgrouter/pgrouter/pgwire"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgrouter/pgrouter/router"
)

// A RESET (RESET ALL, DISCARD ALL, SET x TO DEFAULT) returns a pooled
// backend to its own login values, not to the client's startup ones.
// appendResetReplay sets them again after the client's Query; a statement
// later in the same Query text would still see the backend's value. So a
// multi-statement text whose RESET is followed by more statements gets the
// replay inserted right behind that RESET, as statements of its own whose
// answers only the proxy sees (hiddenStmts). Error positions of the later
// statements are moved back to the client's text.

// hiddenStmts are the proxy's statements inside a client's Query text.
type hiddenStmts struct {
	at   []int     // their indices among the statements sent, ascending
	n    int       // statements answered so far (CommandComplete)
	next int       // index into at of the next hidden statement
	cuts []textCut // where text was inserted, in order
}

// textCut is text inserted into the client's Query: from is its offset
// in characters in the text sent, n its length in characters.
type textCut struct{ from, n int }

// replayInText returns the client's Query text with the replays inserted
// (in the client's encoding), or ok false when the text needs none.
func (ss *session) replayInText(rsql string, plan *router.Plan) (text string, h *hiddenStmts, ok bool) {
	if plan == nil || plan.Stmts < 2 || ss.hints.NonStandardStrings || !resetsStartup(plan, ss.startup) {
		return "", nil, false
	}
	spans, err := router.StatementSpans(rsql)
	if err != nil || len(spans) != plan.Stmts {
		return "", nil, false
	}
	var out strings.Builder
	h = &hiddenStmts{}
	from, chars := 0, 0
	for i, sp := range spans[:len(spans)-1] { // the last one: appendResetReplay
		p, perr := ss.router.PrepareFor(rsql[sp[0]:sp[1]], ss.hints)
		if perr != nil || !resetsStartup(p, ss.startup) {
			continue
		}
		names := ss.resetNames(p)
		chars += utf8.RuneCountInString(rsql[from:sp[1]])
		out.WriteString(rsql[from:sp[1]])
		from = sp[1]
		cut := textCut{from: chars}
		for _, name := range names {
			ins := "\n;" + ss.startup[name] // (a newline ends a comment the statement may end in)
			out.WriteString(ins)
			cut.n += utf8.RuneCountInString(ins)
			h.at = append(h.at, i+1+len(h.at)) // behind the client's first i+1 and the proxy's earlier ones
		}
		chars += cut.n
		h.cuts = append(h.cuts, cut)
	}
	if len(h.at) == 0 {
		return "", nil, false
	}
	out.WriteString(rsql[from:])
	return ss.clientText(out.String()), h, true
}

// resetsStartup reports whether p resets a setting the client gave at startup.
func resetsStartup(p *router.Plan, startup map[string]string) bool {
	for _, v := range p.Sets {
		if _, set := startup[v.Name]; v.All || v.Reset && set {
			return true
		}
	}
	return false
}

// resetNames are the startup settings a single statement resets, sorted.
func (ss *session) resetNames(p *router.Plan) []string {
	var r paramReport
	r.reset = map[string]bool{}
	r.note(p)
	var names []string
	for name := range ss.startup {
		if r.isReset(name) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

// drop reports whether a backend message answers one of the proxy's
// statements (the client never sees it) and counts statements.
func (h *hiddenStmts) drop(typ byte) bool {
	hidden := h.next < len(h.at) && h.at[h.next] == h.n
	switch typ {
	case pgwire.CommandComplete:
		h.n++
		if hidden {
			h.next++
		}
		return hidden
	case pgwire.RowDescription, pgwire.DataRow:
		return hidden
	}
	return false
}

// appendError relays an ErrorResponse with its position moved back to
// the client's text.
func (h *hiddenStmts) appendError(dst, body []byte) []byte {
	var e pgproto3.ErrorResponse
	if e.Decode(body) != nil || e.Position == 0 {
		return appendFrame(dst, pgwire.ErrorResponse, body)
	}
	pos := int(e.Position)
	for _, c := range h.cuts {
		if pos > c.from+c.n {
			e.Position -= int32(c.n)
		}
	}
	return appendMsg(dst, &e)
}

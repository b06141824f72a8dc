package proxy

import "github.com/pgrouter/pgrouter/router"

// escapeParse gives a statement Parsed with standard_conforming_strings off
// a text that reads the same with the setting on or off (plain literals as
// E'…'). Server-side statements are shared by text, and a backend keeps the
// reading of the setting it was prepared under: without this, the same text
// prepared earlier with the setting on would run its old reading. A text
// the rewrite refuses keeps its own; its plan carries the error.
func (ss *session) escapeParse(st *stmt) {
	if !ss.hints.NonStandardStrings {
		return
	}
	text, err := router.EscapedText(st.query)
	if err != nil || text == st.query {
		return
	}
	tail := st.parse[len(st.query)+1:] // after the query's NUL: parameter types
	st.parse = append(append([]byte(text), 0), tail...)
}

// stringsSync returns the SET that gives the backend the client's
// standard_conforming_strings when the two differ, else "". They can differ
// without the client changing anything: after ALTER DATABASE/ROLE … SET,
// new backends start with the new default while a logged-in client keeps
// its own, as a Postgres session does — and the router lexes the client's
// text with the client's setting.
func (ss *session) stringsSync() string {
	if !ss.stringsKnown {
		return "" // logging in: the backend's value (with the startup GUCs) becomes the client's
	}
	want := "on"
	if ss.hints.NonStandardStrings {
		want = "off"
	}
	if have := ss.be.conn.ServerParams["standard_conforming_strings"]; have == "" || have == want {
		return ""
	}
	return "SET standard_conforming_strings = " + want + ";"
}

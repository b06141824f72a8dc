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

// The router lexes a statement with the standard_conforming_strings the
// backend will apply. Inside a transaction (or on a pinned backend) that is
// the bound backend's current value, which its reader keeps current from
// every ParameterStatus (SET, SET LOCAL, set_config, and the undoing of SET
// LOCAL — reported in whatever answer follows, the proxy's own statements'
// included). Between transactions it is the session's own value, to which
// every backend it checks out is synced (stringsSync).

// stringsNow sets the value the router uses for the client's next message.
func (ss *session) stringsNow() {
	if !ss.stringsKnown {
		return
	}
	if ss.be != nil {
		if v := ss.be.conn.ServerParams["standard_conforming_strings"]; v != "" {
			ss.hints.NonStandardStrings = v == "off"
			return
		}
	}
	ss.hints.NonStandardStrings = ss.stringsSession
}

// stringsEnded records the session's value when a transaction (or an
// autocommit statement) ended: SET took effect, SET LOCAL did not.
func (ss *session) stringsEnded() {
	if ss.stringsKnown && ss.be != nil {
		if v := ss.be.conn.ServerParams["standard_conforming_strings"]; v != "" {
			ss.stringsSession = v == "off"
		}
	}
	ss.hints.NonStandardStrings = ss.stringsSession
}

// noteParam stores one ParameterStatus body (name, value) in params.
func noteParam(params map[string]string, body []byte) {
	name, rest, err := cstring(body)
	if err != nil {
		return
	}
	if val, _, err := cstring(rest); err == nil && params[name] != val {
		params[name] = val
	}
}

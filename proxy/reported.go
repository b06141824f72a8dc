package proxy

import (
	"maps"
	"sort"
	"strings"

	"github.com/pgrouter/pgrouter/pgwire"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgrouter/pgrouter/router"
)

// paramReport is the client's view of ParameterStatus. A pooled backend's
// RESET returns to the backend's own login values (application_name
// "pgrouter", the server's DateStyle…), and it reports only what changed
// on that backend; Postgres returns to the client's startup values and
// reports what changed for the client. So the proxy holds the backend's
// reports of a round trip and sends, just before its ReadyForQuery (where
// Postgres 15 sends them), the values the client has now: the login value
// for a setting the round trip reset and the client set at startup, each
// only when it differs from what the client last saw (as guc.c does).
type paramReport struct {
	login    map[string]string // the set sent at login: what RESET returns to
	seen     map[string]string // the value each name last had for the client
	pending  map[string]string // reported by the backend in this round trip
	resetAll bool              // the round trip ran RESET ALL / DISCARD ALL
	reset    map[string]bool   // lower-case name → the round trip's last word on it was a RESET
}

func (r *paramReport) start(login map[string]string) {
	r.login = maps.Clone(login)
	r.seen = maps.Clone(login)
	r.pending = map[string]string{}
	r.reset = map[string]bool{}
}

// note records the SET/RESETs of a statement that succeeded.
func (r *paramReport) note(p *router.Plan) {
	if p == nil || r.reset == nil {
		return
	}
	for _, v := range p.Sets {
		if v.All {
			r.resetAll = true
			clear(r.reset)
			continue
		}
		r.reset[v.Name] = v.Reset
	}
}

// backend holds a ParameterStatus the backend sent.
func (r *paramReport) backend(body []byte) {
	if name, val, ok := paramPair(body); ok && r.pending != nil {
		r.pending[name] = val
	}
}

// sent records a ParameterStatus relayed as is (a statement of a span).
func (r *paramReport) sent(body []byte) {
	if name, val, ok := paramPair(body); ok && r.seen != nil {
		r.seen[name] = val
	}
}

// paramPair decodes a ParameterStatus body.
func paramPair(body []byte) (name, val string, ok bool) {
	name, rest, err := cstring(body)
	if err != nil {
		return "", "", false
	}
	val, _, err = cstring(rest)
	return name, val, err == nil
}

// isReset reports whether the round trip left name at its reset value.
func (r *paramReport) isReset(lower string) bool {
	if v, ok := r.reset[lower]; ok {
		return v
	}
	return r.resetAll
}

// appendBefore writes the round trip's reports to out just before its last
// frame (the ReadyForQuery) and starts the next round trip.
func (r *paramReport) appendBefore(out []byte, startup map[string]string) []byte {
	if r.pending == nil || (len(r.pending) == 0 && !r.resetAll && len(r.reset) == 0) {
		return out
	}
	vals := maps.Clone(r.pending)
	for name, login := range r.login {
		lower := strings.ToLower(name)
		if _, set := startup[lower]; set && r.isReset(lower) {
			vals[name] = login
		}
	}
	names := make([]string, 0, len(vals))
	for name, v := range vals {
		if r.seen[name] != v {
			names = append(names, name)
		}
	}
	// Postgres 15 reports in its GUC table order: names compared without case.
	sort.Slice(names, func(i, j int) bool { return strings.ToLower(names[i]) < strings.ToLower(names[j]) })
	clear(r.pending)
	clear(r.reset)
	r.resetAll = false
	if len(names) == 0 {
		return out
	}
	last := len(out) - 6 // the ReadyForQuery: 'Z', int32 length 5, status
	tail := append([]byte(nil), out[last:]...)
	out = out[:last]
	for _, name := range names {
		r.seen[name] = vals[name]
		out = appendMsg(out, &pgproto3.ParameterStatus{Name: name, Value: vals[name]})
	}
	return append(out, tail...)
}

// appendResetReplay follows a Query that RESETs settings the client gave at
// startup with their startup values, in the same round trip (answers
// swallowed): the backend's RESET went to its own login values, and inside
// a transaction no state sync runs before the client's next statement.
// (Statements after the RESET in the same Query text: reset_intext.go.)
func (ss *session) appendResetReplay(p *router.Plan) {
	names := ss.resetNames(p)
	if len(names) == 0 {
		return
	}
	var q strings.Builder
	for _, name := range names {
		q.WriteString(ss.startup[name])
		q.WriteString(";")
	}
	ss.bout = appendQuery(ss.bout, q.String())
	ss.push(expect{kind: pgwire.Query, swallow: true, replay: names})
}

// replayed records a committed replay in the backend's settings (applySet,
// run at the client's ReadyForQuery just before, recorded the RESET as the
// backend's own values). Inside a transaction nothing changes: a ROLLBACK
// undoes the replay with the RESET, and a COMMIT's applySet resyncs.
func (ss *session) replayed(names []string, status byte) {
	if len(names) == 0 || status != pgwire.TxIdle || ss.be == nil {
		return
	}
	for _, name := range names {
		ss.be.conn.Settings[name] = ss.startup[name]
	}
}

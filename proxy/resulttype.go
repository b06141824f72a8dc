package proxy

import (
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/pgrouter/pgrouter/pgwire"

	"github.com/pgrouter/pgrouter/router"
)

// Postgres fixes a prepared statement's result type at Parse: after a
// schema change that alters it, Bind and Describe of the statement fail
// with 0A000 "cached plan must not change result type" (the client would
// otherwise decode rows with the description it was given). pgrouter
// Parses a statement on a backend only when a Bind first needs it there,
// so a backend that lacks it would silently prepare it under the new
// schema. Where the client was given the statement's description (a
// Describe), the proxy checks it first, once a schema change has been
// seen since the client's Parse: the text is prepared on the backend under
// a scratch name and described; a different result type fails the Bind as
// Postgres does. (A statement the client never described cannot be
// checked: nothing recorded its result type before the change.)

// checkName is the scratch statement of that check.
const checkName = "pgrouter_result_check"

var errResultTypeChanged = pgwire.Error(pgwire.FeatureNotSupported, "cached plan must not change result type", "")

// checkResultTypes refuses the batch at the first Bind or Describe of a
// statement whose result type changed since the client was given it.
func (ss *session) checkResultTypes(route router.Route, sync bool) (router.Route, error) {
	b := &ss.batch
	for i, m := range b.msgs {
		describes := m.typ == pgwire.Describe && len(b.body(i)) > 0 && b.body(i)[0] == pgwire.ObjectStatement
		if m.st == nil || m.raw || m.local || m.st.desc == nil || m.typ != pgwire.Bind && !describes {
			continue
		}
		changed, err := ss.resultTypeChanged(m.st)
		if err != nil {
			return route, err
		}
		if changed {
			ss.refuseIdx = i
			route, err = ss.refuseAt(route, errResultTypeChanged, sync)
			if describes && m.st.params != nil { // Postgres fails after the parameters
				ss.refusal = append(appendFrame(nil, pgwire.ParameterDescription, m.st.params), ss.refusal...)
			}
			return route, err
		}
	}
	return route, nil
}

// resultTypeChanged reports whether st now has another result type than
// the description the client was given (checked on the bound backend).
func (ss *session) resultTypeChanged(st *stmt) (bool, error) {
	gen := ss.srv.stmts.generation()
	switch {
	case st.stale:
		return true, nil
	case st.gen == gen || ss.be.conn.Prepared.Contains(st.server):
		return false, nil // no schema change since, or the backend's own copy (Postgres checks it)
	case ss.openBatch || ss.be.txStatus == pgwire.TxFailed:
		return false, nil // no Sync of the proxy's own here; a failed transaction fails the Bind anyway
	}
	desc, err := ss.describeOnBackend(st)
	if err != nil || desc == nil {
		return false, err // (the Bind reports why the text does not prepare)
	}
	if !sameResultType(st.desc, desc) {
		st.stale = true // for good, as in Postgres (the client prepares it again)
		return true, nil
	}
	st.gen = gen
	return false, nil
}

// describeOnBackend prepares st's text under checkName on the bound
// backend (with the client's settings) and returns its description: a
// RowDescription body, or an empty one for NoData; nil if it failed.
func (ss *session) describeOnBackend(st *stmt) ([]byte, error) {
	b := ss.be
	out, pre := ss.appendPreambleFor(ss.bout[:0], b, "")
	out = appendParseAs(out, checkName, st)
	out = appendFrame(out, pgwire.Describe, append([]byte{pgwire.ObjectStatement}, checkName+"\x00"...))
	out = appendCloseStmt(out, checkName)
	out = append(out, pgwire.Sync, 0, 0, 0, 4)
	ss.bout = out[:0]
	if err := writeAll(b.conn.NetConn, out); err != nil {
		return nil, ss.backendLost(err)
	}
	if _, lost := ss.readPreamble(b, pre); lost != nil {
		return nil, ss.backendLost(lost)
	}
	var desc []byte
	perr, lost := b.readUntilReady(func(typ byte, body []byte) {
		switch typ {
		case pgwire.RowDescription:
			desc = append([]byte{}, body...)
		case pgwire.NoData:
			desc = []byte{}
		}
	})
	if lost != nil {
		return nil, ss.backendLost(lost)
	}
	if perr != nil {
		return nil, nil
	}
	return desc, nil
}

// noteDescription records the description the client was given for st
// (a Describe of the statement): what its result type must stay.
func noteDescription(st *stmt, typ byte, body []byte) {
	if st == nil || st.desc != nil {
		return
	}
	switch typ {
	case pgwire.ParameterDescription:
		st.params = append([]byte{}, body...)
	case pgwire.RowDescription:
		st.desc = append([]byte{}, body...)
	case pgwire.NoData:
		st.desc = []byte{}
	}
}

// sameResultType compares two descriptions as Postgres compares result
// types: column names, types and type modifiers (not the source table).
func sameResultType(a, b []byte) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var x, y pgproto3.RowDescription
	if x.Decode(a) != nil || y.Decode(b) != nil || len(x.Fields) != len(y.Fields) {
		return false
	}
	for i, f := range x.Fields {
		g := y.Fields[i]
		if string(f.Name) != string(g.Name) || f.DataTypeOID != g.DataTypeOID || f.TypeModifier != g.TypeModifier {
			return false
		}
	}
	return true
}

package proxy

import (
	"context"
	"maps"
	"time"

	"github.com/pgrouter/pgrouter/pgwire"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgrouter/pgrouter/router"
)

// preparedCap is the per-backend prepared statement budget (pool.prepared_cache).
func (ss *session) preparedCap() int {
	if n := ss.st.cfg.Pool.PreparedCache; n > 0 {
		return n
	}
	return 500
}

// localStatement answers SET/SHOW pgrouter.* without a backend.
func (ss *session) localStatement(plan *router.Plan) error {
	cmd := plan.LocalCmd
	if !cmd.Show {
		val := cmd.Value
		if val == "auto" {
			val = ""
		}
		switch cmd.Name {
		case "role":
			ss.hints.Role = val
		case "shard":
			ss.hints.Shard = val
		}
		ss.out = appendMsg(ss.out, &pgproto3.CommandComplete{CommandTag: []byte("SET")})
		ss.out = pgwire.AppendReady(ss.out, ss.txStatus)
		return ss.flushClient()
	}
	role := ss.hints.Role
	if role == "" {
		role = "auto"
	}
	rows := [][2]string{{"role", role}, {"shard", ss.hints.Shard}}
	ss.out = appendMsg(ss.out, &pgproto3.RowDescription{Fields: []pgproto3.FieldDescription{
		{Name: []byte("name"), DataTypeOID: 25, DataTypeSize: -1, TypeModifier: -1},
		{Name: []byte("setting"), DataTypeOID: 25, DataTypeSize: -1, TypeModifier: -1}}})
	n := 0
	for _, r := range rows {
		if cmd.Name == "all" || cmd.Name == r[0] {
			ss.out = appendMsg(ss.out, &pgproto3.DataRow{Values: [][]byte{[]byte("pgrouter." + r[0]), []byte(r[1])}})
			n++
		}
	}
	ss.out = appendMsg(ss.out, &pgproto3.CommandComplete{CommandTag: []byte("SHOW")})
	ss.out = pgwire.AppendReady(ss.out, ss.txStatus)
	return ss.flushClient()
}

// functionCall forwards a FunctionCall message (fast-path) to the primary.
func (ss *session) functionCall(body []byte) error {
	if ss.be == nil {
		if err := ss.bindFor(router.Route{Role: router.RolePrimary}); err != nil {
			return ss.replyError(err, true)
		}
	}
	ss.be.wrote = true
	ss.bout = ss.bout[:0]
	ss.appendPreamble(true)
	ss.bout = appendFrame(ss.bout, pgwire.FunctionCall, body)
	ss.push(expect{kind: pgwire.FunctionCall})
	return ss.roundTrip()
}

// loginParams checks the client's startup GUCs on a real backend and returns
// the ParameterStatus set the client should see, exactly as Postgres reports it.
func (ss *session) loginParams(ctx context.Context) (map[string]string, error) {
	if ss.admin {
		return map[string]string{"server_version": "15.0 (pgrouter)", "server_encoding": "UTF8", "client_encoding": "UTF8",
			"DateStyle": "ISO, MDY", "integer_datetimes": "on", "standard_conforming_strings": "on"}, nil
	}
	// A client without startup GUCs sees the servers' defaults: reuse the set
	// from a recent such login instead of taking a backend for every login.
	plain := ss.defaultsOnly()
	if c := ss.srv.defaultParams.Load(); plain && c != nil && time.Since(c.at) < time.Minute {
		return maps.Clone(c.params), nil
	}
	if err := ss.acquireBackend(0, false); err != nil {
		if err2 := ss.acquireBackend(0, true); err2 != nil {
			return nil, err
		}
	}
	ss.bout = ss.bout[:0]
	ss.appendStateSync()
	if len(ss.bout) > 0 {
		if err := ss.loginSync(); err != nil {
			ss.discard()
			return nil, err
		}
	}
	params := maps.Clone(ss.be.conn.ServerParams)
	if _, ok := params["in_hot_standby"]; ok {
		// The set may come from a replica, but pgrouter accepts writes:
		// libpq's target_session_attrs=read-write reads this.
		params["in_hot_standby"] = "off"
	}
	ss.release()
	if plain {
		ss.srv.defaultParams.Store(&cachedParams{params: maps.Clone(params), at: time.Now()})
	}
	return params, nil
}

// loginSync runs the startup GUC query and turns its error into a login error.
func (ss *session) loginSync() error {
	ss.queue = ss.queue[:0]
	b := ss.be
	if err := writeAll(b.conn.NetConn, ss.bout); err != nil {
		return err
	}
	perr, lost := b.readUntilReady(func(typ byte, body []byte) {
		if typ == pgwire.ParameterStatus {
			ss.noteParameterStatus(body)
		}
	})
	if lost != nil {
		return lost
	}
	if perr != nil {
		clear(b.conn.Settings)
		return pgwire.Error(perr.Code, perr.Message, perr.Hint)
	}
	return nil
}

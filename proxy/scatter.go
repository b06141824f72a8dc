package proxy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/pgrouter/pgrouter/pgwire"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgrouter/pgrouter/router"
	"github.com/pgrouter/pgrouter/router/merge"
)

// scatterRead runs a SELECT that needs several shards: the merge plan's
// shard statement goes to every shard in parallel (replicas when fresh
// enough, as for single-shard reads), and the merge engine combines the
// per-shard streams into what one Postgres holding all rows would return.
// Rows stream to the client as the merge produces them: head is called with
// the client's RowDescription first, to write what precedes the rows.
//
// maxRows > 0 is an Execute row limit: after that many rows the read stops
// and suspended is true (the client gets PortalSuspended, as from Postgres);
// with rest non-nil the rows past the limit (all of them with maxRows 0)
// are collected there instead (a portal kept until the transaction or the
// batch ends, scatter_portal.go).
//
// st is the client's prepared statement in the extended protocol: the shard
// statement is then prepared on each backend under a shared server-side
// name, as every extended-protocol statement is, so the shards parse and
// plan it once per backend rather than once per execution. The simple
// protocol (st nil) names it too once the same text comes again (see
// simpleShardStatement), else sends it unnamed.
func (ss *session) scatterRead(sql string, plan *router.Plan, st *stmt, args router.Args, resultFormats []int16, route router.Route, maxRows int64,
	rest *[][]byte, head func(desc []byte)) (n int64, suspended bool, perr *pgconn.PgError) {
	rsql, perr := ss.routerText(sql)
	if perr != nil {
		return 0, false, perr
	}
	sp, again, err := scatterPlanOf(plan, rsql)
	if err != nil {
		return 0, false, toPgError(err)
	}
	mp := sp.merge
	shardSQL := ss.clientText(mp.ShardSQL) // mp is shared: not changed
	named := ss.shardStatement(st, shardSQL)
	if st == nil && again && ss.be == nil && ss.pendingBegin == "" {
		named = ss.simpleShardStatement(sp, shardSQL)
	}
	bs, done, perr := ss.scatterBackends(route.Shards, plan)
	if perr != nil {
		return 0, false, perr
	}
	defer done()
	part := router.InsertPart{SQL: shardSQL, Params: args.Params, Formats: args.Formats, ParamOIDs: args.ParamOIDs}
	srcs := make([]merge.Source, len(bs))
	descs := make([][]byte, len(bs))
	pre := make([]preamble, len(bs))
	lost := sendEach(bs, func(i int, b *binding, msg []byte) []byte {
		msg, pre[i] = ss.appendPreambleFor(msg, b, "")
		src := &shardSource{b: b}
		if named != nil {
			msg, src.parsing = ss.appendNamedPart(msg, b, named, part, mp.ShardFormats(resultFormats))
		} else {
			msg = appendInsertPart(msg, part, mp.ShardFormats(resultFormats))
		}
		srcs[i] = src
		return msg
	})
	if lost != nil {
		return 0, false, firstLost(lost)
	}
	var firstErr *pgconn.PgError
	for i, b := range bs {
		if _, lost := ss.readPreamble(b, pre[i]); lost != nil {
			return 0, false, lost // b is marked broken: discarded, not reused
		}
		d, err := srcs[i].(*shardSource).describe()
		if err != nil && firstErr == nil {
			firstErr = err
		}
		descs[i] = d
	}
	if firstErr == nil {
		if desc, err := mp.ClientDesc(descs[0], resultFormats); err != nil {
			firstErr = toPgError(err)
		} else {
			head(desc)
		}
	}
	if firstErr == nil {
		var rerr error
		sent, keptBytes := int64(0), 0
		_, n, rerr = mp.RunWith(ss.mergeOptions(), descs, resultFormats, srcs, func(row []byte) error {
			if rest != nil && sent == maxRows { // kept for the next Execute or FETCH
				if keptBytes += len(row); keptBytes > keptPortalMax {
					return pgwire.Error(pgwire.ProgramLimitExceeded, fmt.Sprintf("a multi-shard portal suspended inside a transaction or before its batch's Sync keeps at most %d MiB of rows in pgrouter", keptPortalMax>>20),
						"fetch it without a row limit, or restrict it to one shard")
				}
				*rest = append(*rest, bytes.Clone(row))
				return nil
			}
			sent++
			ss.out = appendFrame(ss.out, pgwire.DataRow, row)
			if maxRows > 0 && sent == maxRows && rest == nil {
				// Postgres suspends the portal once the limit is reached,
				// whether or not rows are left.
				return errPortalSuspended
			}
			if len(ss.out) >= clientFlushAt {
				return ss.flushClient()
			}
			return nil
		})
		switch {
		case errors.Is(rerr, errPortalSuspended), rerr == nil && maxRows > 0 && sent == maxRows:
			n, suspended = sent, true
		case rerr != nil:
			firstErr = toPgError(rerr)
		}
	}
	for _, s := range srcs {
		if err := s.(*shardSource).drain(); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	if st == nil && named != nil && isStalePlan(firstErr) {
		sp.named.CompareAndSwap(named, nil) // prepared before a schema change: the next use names it afresh
	}
	return n, suspended, firstErr
}

// isStalePlan reports whether perr is Postgres's "cached plan must not
// change result type" (see isStaleResultType).
func isStalePlan(perr *pgconn.PgError) bool {
	return perr != nil && perr.Code == pgwire.FeatureNotSupported && perr.Routine == "RevalidateCachedQuery"
}

// mergeOptions are the client's settings that shape what the merge
// computes: extra_float_digits (Postgres's default 1 when never set).
func (ss *session) mergeOptions() merge.Options {
	o := merge.Options{ExtraFloatDigits: 1}
	if v, ok := settingValue(ss.desired["extra_float_digits"]); ok {
		if n, err := strconv.Atoi(v); err == nil {
			o.ExtraFloatDigits = n
		}
	}
	return o
}

// settingValue reads the value back from the SQL that applies a client
// setting (see setStartupParams and applySet): the last argument of
// set_config(name, 'value', false), or what follows TO in SET.
func settingValue(sql string) (string, bool) {
	if rest, ok := strings.CutPrefix(sql, "SELECT pg_catalog.set_config("); ok {
		rest = strings.TrimSuffix(rest, ", false)")
		if i := strings.Index(rest, "', '"); i >= 0 {
			return strings.ReplaceAll(strings.TrimSuffix(rest[i+4:], "'"), "''", "'"), true
		}
		return "", false
	}
	if _, v, ok := strings.Cut(sql, " TO "); ok {
		return strings.Trim(strings.TrimSpace(v), "'"), true
	}
	return "", false
}

// shardStatement is the server-side statement to run the shard text
// under, nil for an unnamed one (simple protocol). When the merge kept the
// client's text it is the client's own statement, else the registry names
// the rewritten text with the same parameter types.
func (ss *session) shardStatement(st *stmt, shardSQL string) *stmt {
	if st == nil {
		return nil
	}
	if shardSQL == st.query {
		return st
	}
	parse := append([]byte(shardSQL), 0)
	parse = binary.BigEndian.AppendUint16(parse, uint16(len(st.oids)))
	for _, oid := range st.oids {
		parse = binary.BigEndian.AppendUint32(parse, oid)
	}
	return &stmt{server: ss.srv.stmts.name(ss.stmtKey(parse)), query: shardSQL, oids: st.oids, parse: parse}
}

// appendNamedPart encodes one execution of the named statement st on b:
// Parse first when b lacks it (closing b's least recently used statement
// when its cache is full), then Bind, Describe, Execute, Sync. parsing is
// the name when a Parse was sent: it must leave b's cache if it fails.
func (ss *session) appendNamedPart(dst []byte, b *binding, st *stmt, part router.InsertPart, resultFormats []int16) (out []byte, parsing string) {
	p := b.conn.Prepared
	if p.Contains(st.server) {
		p.Get(st.server) // mark recently used
	} else {
		if p.Len() >= ss.preparedCap() {
			if name, _, ok := p.RemoveOldest(); ok {
				dst = appendCloseStmt(dst, name)
			}
		}
		dst = appendParse(dst, st)
		p.Add(st.server, struct{}{})
		parsing = st.server
	}
	dst = appendMsg(dst, &pgproto3.Bind{PreparedStatement: st.server, ParameterFormatCodes: part.Formats, Parameters: part.Params, ResultFormatCodes: resultFormats})
	dst = appendMsg(dst, &pgproto3.Describe{ObjectType: pgwire.ObjectPortal})
	dst = appendMsg(dst, &pgproto3.Execute{})
	return appendMsg(dst, &pgproto3.Sync{}), parsing
}

// scatterPlan is what a cross-shard read's text is analysed into, once
// per text: its merge plan and, in the simple protocol, the server-side
// statement its shard text runs under (see simpleShardStatement).
type scatterPlan struct {
	merge *merge.Plan
	named atomic.Pointer[stmt]
}

// scatterPlanOf returns the scatter plan of sql, analysed once per
// statement text and kept on the router plan: merge.Analyze (parse,
// rewrite, deparse) is a pure function of the text and was the largest CPU
// cost of a cross-shard read. In the simple protocol plan is keyed by the
// normalised text, so the memo is keyed by the raw text sql (LIMIT and
// HAVING literals shape the merge). again reports that the plan was there
// already: the same text came before.
func scatterPlanOf(plan *router.Plan, sql string) (sp *scatterPlan, again bool, err error) {
	again = true
	v, err := plan.Merge.Get(sql, func(text string) (any, error) {
		again = false
		mp, err := merge.Analyze(text)
		return &scatterPlan{merge: mp}, err
	})
	if err != nil {
		return nil, false, err
	}
	return v.(*scatterPlan), again, nil
}

// simpleShardStatement names the shard text of a simple-protocol
// cross-shard read that came again, so that every shard parses and plans
// it once per backend instead of at every execution (4 shards parsing
// ORDER BY … LIMIT 10 each time cost more than the query itself). The name
// is fresh, not the registry's (a text seen once is never named, and the
// names live only as long as their plan in the router's bounded cache). It
// is nil, unnamed as before, for texts whose meaning could depend on the
// session that first prepared it: string literals (read under DateStyle,
// TimeZone, standard_conforming_strings), non-ASCII bytes (client_encoding),
// or a client search_path of its own. Called outside transactions only: a
// statement prepared before a schema change fails with 0A000 once
// (retried unnamed by scatterSimple), which inside a transaction would
// abort it.
func (ss *session) simpleShardStatement(sp *scatterPlan, shardSQL string) *stmt {
	if _, ok := ss.desired["search_path"]; ok || !plainText(shardSQL) {
		return nil
	}
	gen := ss.srv.stmts.generation()
	if st := sp.named.Load(); st != nil && st.gen == gen && st.query == shardSQL {
		return st
	}
	st := &stmt{server: ss.srv.stmts.fresh(), query: shardSQL, parse: append([]byte(shardSQL), 0, 0, 0), gen: gen}
	sp.named.Store(st)
	return st
}

// plainText reports whether sql is ASCII without string literals (no quote
// or dollar quote): text whose parse no session setting changes.
func plainText(sql string) bool {
	for i := 0; i < len(sql); i++ {
		if c := sql[i]; c >= 0x80 || c == '\'' || c == '$' {
			return false
		}
	}
	return true
}

// errPortalSuspended stops the merge at an Execute's row limit.
var errPortalSuspended = errors.New("portal suspended")

// shardSource reads one shard's answer: RowDescription, then DataRows.
type shardSource struct {
	b       *binding
	parsing string // statement Parsed in this round, until its ParseComplete
	done    bool
	err     *pgconn.PgError
}

// describe reads up to the shard's RowDescription (or its error).
func (s *shardSource) describe() ([]byte, *pgconn.PgError) {
	for {
		typ, body, err := s.b.next()
		if err != nil {
			s.done = true
			return nil, s.b.lost(err)
		}
		switch typ {
		case pgwire.ReadyForQuery:
			s.b.txStatus = body[0]
			s.done = true
			return nil, s.errOr("no result from shard")
		case pgwire.ParseComplete:
			s.parsing = "" // prepared: stays in the backend's cache
		case pgwire.ErrorResponse:
			s.parseFailed()
			s.err = pgwire.DecodeError(body)
			s.readReady()
			return nil, s.err
		case pgwire.RowDescription:
			return append([]byte(nil), body...), nil
		case pgwire.NoData:
			return nil, nil
		}
	}
}

// parseFailed forgets a statement whose Parse failed: the backend does
// not have it (Postgres skips what follows up to the Sync).
func (s *shardSource) parseFailed() {
	if s.parsing != "" {
		s.b.conn.Prepared.Remove(s.parsing)
		s.parsing = ""
	}
}

func (s *shardSource) errOr(msg string) *pgconn.PgError {
	if s.err != nil {
		return s.err
	}
	return pgwire.Error(pgwire.InternalError, msg, "")
}

// Next yields the shard's next DataRow body. It aliases the backend
// reader's buffer, which stays valid until this source reads again: what
// merge.Source promises (the merge copies what it keeps longer), so rows
// are not copied one by one.
func (s *shardSource) Next() ([]byte, bool, error) {
	if s.done {
		return nil, false, nil
	}
	for {
		typ, body, err := s.b.next()
		if err != nil {
			s.done = true
			return nil, false, s.b.lost(err)
		}
		switch typ {
		case pgwire.DataRow:
			return body, true, nil
		case pgwire.CommandComplete, pgwire.PortalSuspended:
			s.readReady()
			return nil, false, nil
		case pgwire.ErrorResponse:
			s.err = pgwire.DecodeError(body)
			s.readReady()
			return nil, false, s.err
		}
	}
}

// readReady consumes the rest of the answer up to ReadyForQuery.
func (s *shardSource) readReady() {
	s.done = true
	s.b.readUntilReady(nil)
}

// drain finishes a source the merge did not read to its end (LIMIT).
func (s *shardSource) drain() *pgconn.PgError {
	for !s.done {
		if _, ok, err := s.Next(); err != nil {
			return toPgError(err)
		} else if !ok {
			break
		}
	}
	return nil
}

// scatterSimple answers a simple-protocol multi-shard SELECT. When the
// shards' statement, prepared under a name before a schema change, fails
// with "cached plan must not change result type" before any row was sent,
// the read runs once more: the name is retired, as a simple query
// Postgres runs afresh never fails that way.
func (ss *session) scatterSimple(sql string, plan *router.Plan, route router.Route) error {
	var n int64
	var perr *pgconn.PgError
	for try := 0; try < 2; try++ {
		described := false
		n, _, perr = ss.scatterRead(sql, plan, nil, router.Args{}, nil, route, 0, nil, func(desc []byte) {
			described = true
			ss.out = appendFrame(ss.out, pgwire.RowDescription, desc)
		})
		if described || !isStalePlan(perr) {
			break
		}
	}
	if perr != nil {
		return ss.replyError(perr, true) // after any rows already sent, as Postgres does
	}
	ss.out = appendMsg(ss.out, &pgproto3.CommandComplete{CommandTag: []byte("SELECT " + strconv.FormatInt(n, 10))})
	ss.out = pgwire.AppendReady(ss.out, ss.txStatus)
	return ss.flushClient()
}

// scatterBatch answers an extended-protocol batch holding one multi-shard
// SELECT execution; ok is false for batch shapes it does not handle.
func (ss *session) scatterBatch(st *stmt, route router.Route, sync bool) (ok bool, err error) {
	b := &ss.batch
	if b.describesStatement(0, len(b.msgs)) {
		return false, nil
	}
	ok, perr := ss.scatterExec(0, len(b.msgs), st, ss.args, ss.resultFormats, route)
	switch {
	case !ok:
		return false, nil
	case perr != nil:
		ss.skipping = !sync // Postgres skips the rest of the batch up to Sync
		return true, ss.replyError(perr, sync)
	}
	if sync {
		ss.out = pgwire.AppendReady(ss.out, ss.txStatus)
	}
	return true, ss.flushClient()
}

// scatterExec runs the multi-shard SELECT executed in ss.batch.msgs[from:to]
// and answers those messages (Sync and Flush aside); ok is false when the
// Execute cannot be read.
func (ss *session) scatterExec(from, to int, st *stmt, args router.Args, resultFormats []int16, route router.Route) (ok bool, perr *pgconn.PgError) {
	b := &ss.batch
	exec := -1
	for i := from; i < to; i++ {
		if b.msgs[i].typ == pgwire.Execute {
			exec = i
		}
	}
	if exec < 0 {
		return false, nil
	}
	maxRows, ok := executeMaxRows(b.body(exec))
	if !ok {
		return false, nil
	}
	var rest *[][]byte
	if maxRows > 0 && (!ss.portalsEndAtSync() || b.msgs[len(b.msgs)-1].typ != pgwire.Sync) {
		rest = new([][]byte) // the portal outlives this batch: keep what is left of it
	}
	var clientDesc []byte
	n, suspended, perr := ss.scatterRead(st.query, st.plan, st, args, resultFormats, route, maxRows, rest, func(desc []byte) {
		clientDesc = desc
		for _, m := range b.msgs[from:exec] {
			switch m.typ {
			case pgwire.Parse:
				ss.out = append(ss.out, pgwire.MsgParseComplete...)
			case pgwire.Bind:
				ss.out = append(ss.out, pgwire.MsgBindComplete...)
			case pgwire.Describe:
				ss.out = appendFrame(ss.out, pgwire.RowDescription, desc)
			case pgwire.Close:
				ss.out = append(ss.out, pgwire.MsgCloseComplete...)
			}
		}
	})
	if perr != nil {
		return true, perr
	}
	if suspended && rest != nil {
		portal, _, _ := cstring(b.body(exec))
		ss.keepPortal(portal, bytes.Clone(clientDesc), *rest)
		ss.keptToSync = ss.portalsEndAtSync()
	}
	if suspended {
		ss.out = append(ss.out, pgwire.PortalSuspended, 0, 0, 0, 4) // PortalSuspended; the Sync closes the portal unless kept
	} else {
		ss.out = appendMsg(ss.out, &pgproto3.CommandComplete{CommandTag: []byte("SELECT " + strconv.FormatInt(n, 10))})
	}
	for _, m := range b.msgs[exec+1 : to] {
		if m.typ == pgwire.Close {
			ss.out = append(ss.out, pgwire.MsgCloseComplete...)
		}
	}
	return true, nil
}

// executeMaxRows reads the row limit of an Execute body (portal name,
// int32 max rows; 0 = all).
func executeMaxRows(body []byte) (int64, bool) {
	i := bytes.IndexByte(body, 0)
	if i < 0 || len(body) < i+5 {
		return 0, false
	}
	return int64(int32(binary.BigEndian.Uint32(body[i+1:]))), true
}

// multiRead reports whether route is a SELECT pgrouter gathers from several
// shards itself (cross_shard allowed): outside a transaction, or inside a
// healthy one of a pooled session (on the transaction's own backends).
func (ss *session) multiRead(plan *router.Plan, route router.Route) bool {
	if plan == nil || !plan.Select || !route.Multi || route.Split || ss.db.CrossShard == "deny" {
		return false
	}
	return ss.be == nil || (ss.txStatus == pgwire.TxActive && !ss.openBatch && ss.pinned == "" && ss.st.cfg.Pool.Mode != "session")
}

// scatterBackends gives a cross-shard read a backend on every shard of
// set, and what to call when it is done. Outside a transaction they are
// checked out for the read and given back; inside one they are the
// transaction's own (joined on demand, see multitx.go) and stay with it,
// so the read sees the transaction's writes.
func (ss *session) scatterBackends(set router.ShardSet, plan *router.Plan) ([]*binding, func(), *pgconn.PgError) {
	if ss.be == nil && ss.pendingBegin == "" {
		bs, perr := ss.bindShards(set, false)
		if perr != nil {
			return nil, nil, perr
		}
		return bs, func() { ss.releaseAll(bs) }, nil
	}
	if ss.be == nil { // first statement after a deferred BEGIN
		if err := ss.openTx(set.First()); err != nil {
			return nil, nil, toPgError(err)
		}
	}
	cur := ss.be
	var bs []*binding
	var err error
	set.Each(func(shard int) {
		if err == nil {
			if err = ss.multiTxAllows(plan, false, shard); err == nil {
				err = ss.joinShard(shard)
			}
		}
		if err == nil {
			bs = append(bs, ss.be)
		}
	})
	ss.switchTo(cur)
	if err != nil {
		return nil, nil, toPgError(err)
	}
	ss.markRunning(bs)
	return bs, func() {
		ss.cancelMu.Lock()
		ss.runningMulti = nil
		ss.running.Store(ss.be)
		ss.cancelMu.Unlock()
	}, nil
}

package proxy

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"

	"github.com/pgrouter/pgrouter/pgwire"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgrouter/pgrouter/router"
)

// splitResult is what one shard answered to its part of a split INSERT.
type splitResult struct {
	rowDesc []byte // RowDescription frame (RETURNING), nil for NoData
	rows    []byte // DataRow frames
	count   int64
	tag     string // CommandComplete tag without its row count ("UPDATE", "INSERT 0", "CREATE TABLE")
	err     *pgconn.PgError
	prev    []splitResult // a script's answers to the statements before the last
}

// broadcastParts runs one statement unchanged on every shard of route.
func broadcastParts(sql string, args router.Args, route router.Route) []router.InsertPart {
	var parts []router.InsertPart
	route.Shards.Each(func(i int) {
		parts = append(parts, router.InsertPart{Shard: i, SQL: sql, Params: args.Params, Formats: args.Formats, ParamOIDs: args.ParamOIDs})
	})
	return parts
}

// execOnShards runs one statement per shard, each inside its own
// transaction on that shard's primary, and commits only when every part
// succeeded (else all roll back). With two_phase_commit the commit is
// atomic (twopc.go); without it the commits themselves are not, and a
// failure between them is reported as such (XX000), never hidden.
//
// check (nil: none) vets the parts' answers before anything commits.
func (ss *session) execOnShards(parts []router.InsertPart, resultFormats []int16, check func([]splitResult) *pgconn.PgError) ([]splitResult, *pgconn.PgError) {
	var set router.ShardSet
	for _, p := range parts {
		set = set.Add(p.Shard)
	}
	bs, perr := ss.bindShards(set, true) // parts are sorted by shard, like bs
	if perr != nil {
		return nil, perr
	}
	defer func() { ss.releaseAll(bs) }()
	results := make([]splitResult, len(parts))
	pre := make([]preamble, len(bs))
	lost := sendEach(bs, func(i int, b *binding, msg []byte) []byte {
		msg, pre[i] = ss.appendPreambleFor(msg, b, "BEGIN")
		if isScript(parts[i], resultFormats) {
			return appendQuery(msg, parts[i].SQL) // the extended protocol takes one statement
		}
		return appendInsertPart(msg, parts[i], resultFormats)
	})
	if lost != nil {
		return nil, firstLost(lost)
	}
	failed := (*pgconn.PgError)(nil)
	for i, b := range bs {
		perr, lost := ss.readPreamble(b, pre[i])
		if lost == nil {
			results[i].err = perr
			lost = readPart(b, &results[i])
		}
		if lost != nil {
			return nil, lost
		}
		if results[i].err != nil && failed == nil {
			failed = results[i].err
		}
	}
	if failed == nil && check != nil {
		failed = check(results)
	}
	if failed == nil && len(bs) > 1 && ss.twoPhase() {
		out := ss.srv.coord.commit(ss, bs)
		if out.err != nil {
			return nil, out.err
		}
		if out.warning != nil {
			ss.out = appendNotice(ss.out, out.warning)
		}
		ss.setWriteFloors(bs)
		return results, nil
	}
	if failed != nil {
		execAll(bs, "ROLLBACK")
		return nil, failed
	}
	var committed, bad []string
	for i, r := range execAll(bs, "COMMIT") {
		if name := ss.st.cfg.Shards[bs[i].shard].Name; r.err != nil || r.tag != "COMMIT" {
			bad = append(bad, name)
		} else {
			committed = append(committed, name)
		}
	}
	if len(bad) > 0 {
		return nil, pgwire.Error(pgwire.InternalError, fmt.Sprintf("multi-shard write: COMMIT failed on shard(s) [%s] after it succeeded on [%s]",
			strings.Join(bad, ", "), strings.Join(committed, ", ")), "enable two_phase_commit for atomic multi-shard writes; check the rows on each shard")
	}
	ss.setWriteFloors(bs)
	return results, nil
}

// setWriteFloors makes the session's next reads see what bs committed.
func (ss *session) setWriteFloors(bs []*binding) {
	snap := ss.srv.topo.Snapshot()
	for _, b := range bs {
		ss.floor[b.shard] = snap.WriteFloor(b.shard)
	}
}

// appendInsertPart encodes one part as an unnamed extended-protocol execution.
func appendInsertPart(dst []byte, p router.InsertPart, resultFormats []int16) []byte {
	dst = appendMsg(dst, &pgproto3.Parse{Query: p.SQL, ParameterOIDs: p.ParamOIDs})
	dst = appendMsg(dst, &pgproto3.Bind{ParameterFormatCodes: p.Formats, Parameters: p.Params, ResultFormatCodes: resultFormats})
	dst = appendMsg(dst, &pgproto3.Describe{ObjectType: pgwire.ObjectPortal})
	dst = appendMsg(dst, &pgproto3.Execute{})
	return appendMsg(dst, &pgproto3.Sync{})
}

// isScript reports whether p is a multi-statement text (a broadcast
// script of the simple protocol: no parameters, text results).
func isScript(p router.InsertPart, resultFormats []int16) bool {
	if len(p.Params) > 0 || len(resultFormats) > 0 || singleStatement(p.SQL) {
		return false
	}
	texts, err := router.SplitStatements(p.SQL) // a ';' may sit in a literal
	return err == nil && len(texts) > 1
}

// readPart collects one part's answers up to its ReadyForQuery (after
// its preamble's, see readPreamble); lost reports a dead connection.
func readPart(b *binding, r *splitResult) (lost *pgconn.PgError) {
	perr, lost := b.readUntilReady(func(typ byte, body []byte) {
		if (typ == pgwire.RowDescription || typ == pgwire.CommandComplete) && r.tag != "" {
			// The next statement of a script: keep the answer so far.
			r.prev = append(r.prev, splitResult{rowDesc: r.rowDesc, rows: r.rows, count: r.count, tag: r.tag})
			r.rowDesc, r.rows, r.tag, r.count = nil, nil, "", 0
		}
		switch typ {
		case pgwire.RowDescription:
			r.rowDesc = appendFrame(nil, typ, body)
		case pgwire.DataRow:
			r.rows = appendFrame(r.rows, typ, body)
		case pgwire.CommandComplete:
			r.tag, r.count = splitTag(body)
		}
	})
	if r.err == nil {
		r.err = perr
	}
	return lost
}

// splitTag cuts a CommandComplete tag into its words and trailing row
// count ("UPDATE 3" → "UPDATE", 3); tags without a count keep count -1.
func splitTag(body []byte) (string, int64) {
	tag := strings.TrimRight(string(body), "\x00")
	i := strings.LastIndexByte(tag, ' ')
	if n, err := strconv.ParseInt(tag[i+1:], 10, 64); err == nil && i > 0 {
		return tag[:i], n
	}
	return tag, -1
}

// appendRowDesc writes the parts' RowDescription (RETURNING), or NoData
// when noData is set and there is none (the answer to Describe portal).
func appendRowDesc(dst []byte, results []splitResult, noData bool) []byte {
	if results[0].rowDesc != nil {
		return append(dst, results[0].rowDesc...)
	}
	if noData {
		return append(dst, pgwire.MsgNoData...)
	}
	return dst
}

// appendSplitRows writes every part's rows and one CommandComplete whose
// row count is the sum of the parts' ("UPDATE 7" from 3 + 4).
func appendSplitRows(dst []byte, results []splitResult) []byte {
	var total int64
	for _, r := range results {
		dst = append(dst, r.rows...)
		total += r.count
	}
	tag := results[0].tag
	if results[0].count >= 0 {
		tag += " " + strconv.FormatInt(total, 10)
	}
	return appendMsg(dst, &pgproto3.CommandComplete{CommandTag: []byte(tag)})
}

// multiSimple answers a simple-protocol statement run on several shards:
// a split INSERT, or a write broadcast to every shard of route.
func (ss *session) multiSimple(sql string, route router.Route) error {
	results, perr := ss.runMulti(sql, router.Args{}, nil, route)
	if perr != nil {
		return ss.replyError(perr, true)
	}
	for k := range results[0].prev { // the earlier statements of a script
		stmt := make([]splitResult, len(results))
		for i, r := range results {
			if len(r.prev) != len(results[0].prev) {
				return ss.replyError(pgwire.Error(pgwire.InternalError, "shards answered a different number of statements", ""), true)
			}
			stmt[i] = r.prev[k]
		}
		ss.out = appendRowDesc(ss.out, stmt, false)
		ss.out = appendSplitRows(ss.out, stmt)
	}
	ss.out = appendRowDesc(ss.out, results, false)
	ss.out = appendSplitRows(ss.out, results)
	ss.out = pgwire.AppendReady(ss.out, ss.txStatus)
	return ss.flushClient()
}

// multiBatch answers an extended-protocol batch holding one multi-shard
// write (Parse? Bind Describe-portal? Execute Close* Sync); ok is false for
// batch shapes it does not handle.
func (ss *session) multiBatch(st *stmt, route router.Route) (ok bool, err error) {
	b := &ss.batch
	if b.describesStatement(0, len(b.msgs)) {
		return false, nil
	}
	if perr := ss.multiExec(0, len(b.msgs), st, ss.args, ss.resultFormats, route); perr != nil {
		return true, ss.replyError(perr, true)
	}
	ss.out = pgwire.AppendReady(ss.out, ss.txStatus)
	return true, ss.flushClient()
}

// multiExec runs the multi-shard write bound in ss.batch.msgs[from:to]
// and answers those messages (Sync and Flush aside) as Postgres would.
func (ss *session) multiExec(from, to int, st *stmt, args router.Args, resultFormats []int16, route router.Route) *pgconn.PgError {
	results, perr := ss.runMulti(st.query, args, resultFormats, route)
	if perr != nil {
		return perr
	}
	for _, m := range ss.batch.msgs[from:to] {
		switch m.typ {
		case pgwire.Parse:
			ss.out = append(ss.out, pgwire.MsgParseComplete...)
		case pgwire.Bind:
			ss.out = append(ss.out, pgwire.MsgBindComplete...)
		case pgwire.Describe:
			ss.out = appendRowDesc(ss.out, results, true)
		case pgwire.Execute:
			ss.out = appendSplitRows(ss.out, results)
		case pgwire.Close:
			ss.out = append(ss.out, pgwire.MsgCloseComplete...)
		}
	}
	return nil
}

// describesStatement reports whether msgs[from:to] hold a Describe of a
// statement, which the multi-shard executors do not answer.
func (b *batch) describesStatement(from, to int) bool {
	for _, m := range b.msgs[from:to] {
		if m.typ == pgwire.Describe && m.n > 0 && b.buf[m.off] == pgwire.ObjectStatement {
			return true
		}
	}
	return false
}

// runMulti executes a split INSERT or a broadcast write: in its own
// per-shard transactions, or inside the client's open transaction.
func (ss *session) runMulti(sql string, args router.Args, resultFormats []int16, route router.Route) ([]splitResult, *pgconn.PgError) {
	parts := broadcastParts(sql, args, route)
	if route.Split {
		var err error
		if parts, err = ss.splitInsert(sql, args); err != nil {
			return nil, toPgError(err)
		}
	}
	var check func([]splitResult) *pgconn.PgError
	if route.Reference {
		check = func(rs []splitResult) *pgconn.PgError { return ss.sameEverywhere(route.Table, parts, rs) }
	}
	var results []splitResult
	var perr *pgconn.PgError
	if ss.be != nil || ss.pendingBegin != "" {
		results, perr = ss.execInTx(parts, resultFormats)
		if perr == nil && check != nil {
			if perr = check(results); perr != nil {
				ss.failTx()
			}
		}
	} else {
		results, perr = ss.execOnShards(parts, resultFormats, check)
	}
	if perr == nil && route.Reference {
		results = results[:1] // every shard said the same: say it once
	}
	if perr == nil && route.Split {
		valuesOrder(parts, results)
	}
	return results, perr
}

// valuesOrder puts the RETURNING rows of a split INSERT back in the order
// of its VALUES list, as one Postgres returns them (ORMs match returned
// keys to their objects by position): all rows then sit in results[0].
// It needs one returned row per inserted row; when a part returned fewer
// (ON CONFLICT DO NOTHING, a trigger that skipped a row) which rows are
// missing is unknown, and the rows stay grouped by shard.
func valuesOrder(parts []router.InsertPart, results []splitResult) {
	if len(results) < 2 || len(results) != len(parts) || results[0].rowDesc == nil {
		return
	}
	total := 0
	for i, r := range results {
		if r.count != int64(len(parts[i].Rows)) || len(r.prev) > 0 {
			return
		}
		total += len(parts[i].Rows)
	}
	ordered := make([][]byte, total)
	for i, r := range results {
		frames := r.rows
		for _, pos := range parts[i].Rows {
			if len(frames) < 5 || frames[0] != pgwire.DataRow || pos >= total {
				return
			}
			n := 1 + int(binary.BigEndian.Uint32(frames[1:5]))
			if n > len(frames) {
				return
			}
			ordered[pos], frames = frames[:n], frames[n:]
		}
		if len(frames) > 0 {
			return
		}
	}
	size := 0
	for _, r := range results {
		size += len(r.rows)
	}
	all := make([]byte, 0, size)
	for _, f := range ordered {
		if f == nil {
			return
		}
		all = append(all, f...)
	}
	for i := range results {
		results[i].rows = nil
	}
	results[0].rows = all
}

// sameEverywhere requires the shards' answers to a reference-table write
// to agree (each shard holds the whole table): one Postgres would have
// answered once, and a difference means the copies have drifted apart.
func (ss *session) sameEverywhere(table string, parts []router.InsertPart, rs []splitResult) *pgconn.PgError {
	for i := 1; i < len(rs); i++ {
		if rs[i].tag != rs[0].tag || rs[i].count != rs[0].count || !bytes.Equal(rs[i].rows, rs[0].rows) {
			names := ss.st.cfg.Shards
			return pgwire.Error(pgwire.InternalError, fmt.Sprintf("reference table %q differs between shards: shard %s answered %s %d, shard %s %s %d; the write is rolled back",
				table, names[parts[0].Shard].Name, rs[0].tag, rs[0].count, names[parts[i].Shard].Name, rs[i].tag, rs[i].count),
				"make the table's rows identical on every shard")
		}
	}
	return nil
}

// failTx fails the client's open transaction on its current backend, for
// an error pgrouter raised itself after statements ran: as in Postgres,
// what follows gets 25P02 until ROLLBACK (or ROLLBACK TO a savepoint), and
// COMMIT rolls back on every shard.
//
// It runs in the extended protocol under a portal name of its own: the
// portal of a failed statement lives until the transaction ends, and a
// simple Query's (unnamed) would answer the client's Describe of "".
func (ss *session) failTx() {
	b := ss.be
	if b == nil || b.txStatus != pgwire.TxActive {
		return
	}
	msg := appendParseAs(nil, "", &stmt{parse: []byte(failTxSQL + "\x00\x00\x00")})
	msg = appendFrame(msg, pgwire.Bind, []byte(failTxPortal+"\x00\x00\x00\x00\x00\x00\x00\x00"))
	msg = appendFrame(msg, pgwire.Execute, []byte(failTxPortal+"\x00\x00\x00\x00\x00"))
	msg = append(msg, pgwire.Sync, 0, 0, 0, 4)
	if err := writeAll(b.conn.NetConn, msg); err != nil {
		b.txStatus = pgwire.TxFailed // broken: discarded, not reused
		return
	}
	b.readUntilReady(nil)
}

const (
	failTxSQL    = "DO $pgrouter$ BEGIN RAISE EXCEPTION 'statement refused by pgrouter'; END $pgrouter$"
	failTxPortal = "pgrouter.failed"
)

// multiWrite reports whether route is a write pgrouter runs on several
// shards itself: a split INSERT, or (cross_shard allowed) a write without
// a usable shard key. A SELECT never is: broadcasting it would concatenate
// what needs merging.
func (ss *session) multiWrite(plan *router.Plan, route router.Route) bool {
	if plan == nil || plan.Select || plan.Copy != nil {
		return false // COPY has its own path (copysplit.go), outside transactions
	}
	if ss.be != nil && (ss.txStatus != pgwire.TxActive || ss.pinned != "" || ss.st.cfg.Pool.Mode == "session") {
		return false // only a healthy transaction of a pooled session may spread
	}
	if route.Split {
		return true
	}
	return route.Multi && route.Role == router.RolePrimary && ss.db.CrossShard != "deny"
}

package proxy

import (
	"bytes"
	"strings"

	"github.com/pgrouter/pgrouter/pgwire"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgrouter/pgrouter/router"
)

// What Postgres does after an error in the extended protocol, mirrored:
// the failing message's error, nothing for the messages up to the next
// Sync, then ReadyForQuery. The session keeps this promise whether the
// error came from the backend or from the proxy, and whether the client
// ended its batch with Sync or with Flush (then ss.skipping carries the
// state to the client's next messages).

// refusedPortal is the portal of the Describe sent in place of a message
// the proxy refused (see refuseAt): it never exists, so the backend fails
// at that point too and skips to Sync with the client.
var refusedPortal = []byte("Ppgrouter.refused\x00")

// msgRefused marks, in a batch, where the proxy's refusal stands.
const msgRefused = 0

// refuseAt answers a proxy-detected error at the position Postgres would:
// the batch's messages before the failing one run (or are answered) first,
// the error takes the failing message's place, and the rest up to Sync is
// skipped. It returns err when the batch must be refused whole instead.
func (ss *session) refuseAt(route router.Route, err error, sync bool) (router.Route, error) {
	i := ss.refuseIdx
	b := &ss.batch
	// A Parse of a name in use fails in Postgres only once its text parsed
	// and analysed: Postgres checks the text first (unnamed), then the
	// proxy's 42P05 stands after it.
	pe, _ := err.(*pgconn.PgError)
	check := pe != nil && pe.Code == pgwire.DuplicatePreparedStatement &&
		i >= 0 && i < len(b.msgs) && b.msgs[i].typ == pgwire.Parse && b.msgs[i].st != nil
	// With nothing before it and no backend, there is nothing to keep in
	// order (and no backend transaction to fail): refuse the batch whole.
	if err == errMalformed || i <= 0 && ss.be == nil && !check || route.Multi || route.Split {
		return route, err
	}
	ss.forgetParses(i) // never parsed: Postgres skipped them
	end := batchMsg{typ: pgwire.Flush}
	if sync {
		end.typ = pgwire.Sync
	}
	if check {
		b.msgs[i].check = true
		i++
	}
	b.msgs = append(b.msgs[:i], batchMsg{typ: msgRefused}, end)
	pe = toPgError(err)
	ss.srv.Metrics.errors(pe.Code)
	ss.refusal = pgwire.AppendError(ss.refusal[:0], pe)
	return route, nil
}

// appendRefusal sends the message that fails in place of the refused one.
func (ss *session) appendRefusal() {
	ss.bout = appendFrame(ss.bout, pgwire.Describe, refusedPortal)
	ss.push(expect{kind: pgwire.Describe, errOut: append([]byte(nil), ss.refusal...)})
}

// appendOwnSync ends a batch the client left open with Flush, when that
// batch only prepared or described statements outside a transaction: the
// backend then holds nothing of the client's and goes back to the pool now
// rather than at the client's Sync (which the proxy answers itself). An
// implicit transaction left open would hold its locks meanwhile.
func (ss *session) appendOwnSync() {
	ss.bout = append(ss.bout, pgwire.Sync, 0, 0, 0, 4)
	ss.push(expect{kind: pgwire.Sync, swallow: true})
	ss.openBatch = false
}

// endSkip handles the Sync that ends skipping after an error: a backend
// still inside the batch gets it and answers; otherwise the proxy does.
func (ss *session) endSkip() error {
	ss.skipping = false
	if ss.be != nil && ss.openBatch {
		ss.batch.add(pgwire.Sync, nil)
		return ss.flushBatch(true)
	}
	if ss.be == nil && ss.pendingBegin != "" {
		ss.abortDeferredTx()
	}
	ss.out = pgwire.AppendReady(ss.out, ss.txStatus)
	return ss.flushClient()
}

// flushPending sends the batch so far before a Query or FunctionCall, or
// when it grows large; the Flush added makes the backend answer it now.
func (ss *session) flushPending() error {
	ss.batch.add(pgwire.Flush, nil)
	return ss.flushBatch(false)
}

// describeOnOneShard answers the Parse and Describe(statement) messages
// that open a batch about to run on several shards: every shard has the
// same schema, so one shard's answer is what Postgres would give. The rest
// of the batch is left for the multi-shard executor. done is true when the
// batch was answered in full (an error: Postgres skips to Sync).
func (ss *session) describeOnOneShard(shard int, sync bool) (done bool, err error) {
	b := &ss.batch
	last := -1
	for i, m := range b.msgs {
		if m.typ == pgwire.Bind || m.typ == pgwire.Execute {
			break
		}
		if m.typ == pgwire.Describe && m.n > 0 && b.buf[m.off] == pgwire.ObjectStatement {
			last = i
		}
	}
	if last < 0 {
		return false, nil
	}
	if ss.be == nil {
		if err := ss.acquireBackend(max(shard, 0), false); err != nil {
			return true, ss.refuseBatch(err, sync)
		}
	}
	ss.bout = ss.bout[:0]
	ss.appendStateSync()
	for i := 0; i <= last; i++ {
		if err := ss.translate(b.msgs[i], b.body(i)); err != nil {
			ss.writeClient(pgwire.AppendError(nil, pgwire.Fatal(pgwire.ProtocolViolation, err.Error())))
			return true, errClientGone
		}
	}
	ss.appendOwnSync()
	if err := ss.roundTrip(); err != nil {
		return true, err
	}
	if ss.failed {
		if ss.be != nil {
			ss.txStatus = ss.be.txStatus
		}
		// Without the client's Sync it skips to that Sync (answered then).
		if ss.skipping = !sync; sync {
			ss.out = pgwire.AppendReady(ss.out, ss.txStatus)
		}
		return true, ss.flushClient()
	}
	b.msgs = b.msgs[last+1:]
	return false, nil
}

// answerDeallocate queues the answers to a locally handled DEALLOCATE's
// Bind, Describe(portal) and Execute, in their place in the stream.
func (ss *session) answerDeallocate(m batchMsg) {
	switch m.typ {
	case pgwire.Bind:
		ss.push(expect{kind: pgwire.Bind, synth: pgwire.MsgBindComplete})
	case pgwire.Describe:
		ss.push(expect{kind: pgwire.Describe, synth: pgwire.MsgNoData})
	case pgwire.Execute:
		tag := msgDeallocate
		if m.st.plan.Deallocate.All {
			tag = msgDeallocateAll
		}
		ss.push(expect{kind: pgwire.Execute, synth: tag})
	}
}

var (
	msgDeallocate    = appendMsg(nil, &pgproto3.CommandComplete{CommandTag: []byte("DEALLOCATE")})
	msgDeallocateAll = appendMsg(nil, &pgproto3.CommandComplete{CommandTag: []byte("DEALLOCATE ALL")})
)

// appendRenamedError relays a backend's error about a Bind with the
// client's statement name in place of the server-side one it names (such
// as "bind message supplies 1 parameters, but prepared statement …").
func appendRenamedError(dst, body []byte, server, client string) []byte {
	var e pgproto3.ErrorResponse
	if e.Decode(body) != nil {
		return appendFrame(dst, pgwire.ErrorResponse, body)
	}
	e.Message = strings.ReplaceAll(e.Message, `"`+server+`"`, `"`+client+`"`)
	e.Detail = strings.ReplaceAll(e.Detail, `"`+server+`"`, `"`+client+`"`)
	return appendMsg(dst, &e)
}

// executesCopy reports whether the batch's last Bind is of a COPY
// statement: its Execute starts COPY, which Postgres answers at once.
func (ss *session) executesCopy() bool {
	b := &ss.batch
	for i := len(b.msgs) - 1; i >= 0; i-- {
		if b.msgs[i].typ != pgwire.Bind {
			continue
		}
		body := b.body(i)
		_, rest, ok := bytes.Cut(body, []byte{0}) // portal
		if !ok {
			return false
		}
		name, _, ok := bytes.Cut(rest, []byte{0})
		if !ok {
			return false
		}
		for j := i - 1; j >= 0; j-- { // Parsed in this batch, not registered yet
			if b.msgs[j].typ == pgwire.Parse {
				pname, q, _ := bytes.Cut(b.body(j), []byte{0})
				if bytes.Equal(pname, name) {
					return isCopy(q)
				}
			}
		}
		if st := ss.stmts[string(name)]; st != nil {
			return isCopy(st.query)
		}
		return false
	}
	return false
}

// isCopy reports whether sql starts with the COPY keyword (no allocation:
// it runs for every Execute).
func isCopy[T string | []byte](sql T) bool {
	i := 0
	for i < len(sql) && (sql[i] == ' ' || sql[i] == '\t' || sql[i] == '\r' || sql[i] == '\n') {
		i++
	}
	if len(sql)-i < 4 {
		return false
	}
	for j := 0; j < 4; j++ {
		if sql[i+j]|0x20 != "copy"[j] {
			return false
		}
	}
	return true
}

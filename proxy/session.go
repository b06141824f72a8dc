package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pgrouter/pgrouter/pgwire"
	"golang.org/x/time/rate"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgrouter/pgrouter/config"
	"github.com/pgrouter/pgrouter/pool/sockio"
	"github.com/pgrouter/pgrouter/router"
	"github.com/pgrouter/pgrouter/topology"
)

// session is one client connection. All protocol logic runs on the session's
// own goroutine: read a client message (or a batch up to Sync/Flush), decide
// where it goes, write it to the backend once, relay the answers back, and
// give the backend back to its pool as soon as the transaction is over.
//
// Its state comes in concern-shaped parts, each a type of its own embedded
// here (their fields and methods read as the session's):
//   - txState (txstate.go): the client's transaction — its backend(s),
//     deferred BEGIN, savepoints, SETs, failure, ReadyForQuery status;
//   - batchState (batch.go): the extended-protocol batch until Sync —
//     the queued messages, bound plans, a refusal standing in it, skipping;
//   - exchange (exchange.go): one round trip with the backend — the bytes
//     sent and the answers still expected, in order.
//
// What stays directly on session is the client conversation: the
// connection, login, its settings and statements, pinning, cancel and
// timeouts, and what the admin console reads from other goroutines.
type session struct {
	srv    *Server
	st     *serverState
	conn   net.Conn
	pid    uint32
	secret [4]byte

	user   *config.User
	dbName string
	db     *config.Database
	router *router.Router
	admin  bool
	rate   *rate.Limiter // the user's limits.user_query_rate bucket; nil = off (limits.go)

	rd  *frameReader
	out []byte // pending bytes to the client, flushed once per round trip

	startup map[string]string // GUCs from the startup packet: name → apply SQL
	desired map[string]string // GUCs the client has now: name → apply SQL
	params  paramReport       // the ParameterStatus values the client has seen

	stmts   map[string]*stmt // client statement name → statement
	hints   router.Session
	floor   []topology.Floor // per shard read-your-writes floor
	scratch router.Scratch

	watch  *idleWatch // relays a pinned backend's notifications while the client is idle
	pinned string     // why the client is pinned to its backend ("" = not pinned)

	txState
	batchState
	exchange

	pinnedReason atomic.Pointer[string] // pinned, for the admin console (read from other goroutines)
	cancelMu     sync.Mutex             // serialises cancel forwarding with backend release
	running      atomic.Pointer[binding]
	primaries    atomic.Uint64 // shards whose primary the session holds a backend on (cutover.go)
	quiet        atomic.Bool   // between messages, outside any transaction or open batch (cutover.go)
	txGen        atomic.Uint64 // grows whenever the session becomes quiet, and when it ends
	runningMulti []*binding    // backends of a multi-shard statement in progress (guarded by cancelMu)
	multiStart   time.Time     // when that statement started
	closing      atomic.Bool
	fenced       atomic.Pointer[pgconn.PgError] // the fence's error for this client (fence.go); nil = not fenced
	fenceMu      sync.Mutex                     // orders the fence's client deadlines with the session's last write
	fenceTold    bool                           // the client was sent the fence's error (session goroutine)
	fenceCut     bool                           // a sweep cut the client's writes short (under fenceMu)

	stringsKnown   bool      // hints.NonStandardStrings is the client's (login done): see stringsSync
	stringsSession bool      // standard_conforming_strings is off outside transactions (see stringsNow)
	idleSince      time.Time // when the session began waiting for the client (timeouts.idle_in_transaction)
	idleArmed      time.Time // the client read deadline set for it; zero = none
	connectedAt    time.Time
	queries        atomic.Uint64
	busy           atomic.Bool   // handling a client message now (admin console: active vs idle)
	shownTx        atomic.Uint32 // txStatus as of the last message handled, for the admin console
}

// newSession starts a session on c; pending are bytes the client sent
// behind its login, read ahead by the login reader.
func newSession(srv *Server, st *serverState, c net.Conn, u *config.User, pending []byte) *session {
	c = sockio.Wrap(c) // raw-syscall I/O on the hot path (see package sockio)
	rd := newFrameReader(c, clientBuffer)
	rd.lendTo(&clientBuffers, pending)
	rd.max = st.cfg.Limits.MaxMessageSize
	return &session{
		srv: srv, st: st, conn: c, user: u,
		rd:          rd,
		stmts:       map[string]*stmt{},
		desired:     map[string]string{},
		startup:     map[string]string{},
		txState:     txState{txStatus: pgwire.TxIdle},
		floor:       make([]topology.Floor, len(st.cfg.Shards)),
		hints:       router.Session{Role: u.DefaultRole},
		connectedAt: time.Now(),
	}
}

// clientBuffer is the size of a client's read buffer. Clients borrow it from
// clientBuffers only while a message is arriving (frameReader.lendTo).
const clientBuffer = 16 << 10

var clientBuffers = sync.Pool{New: func() any { b := make([]byte, clientBuffer); return &b }}

// startupSkip are startup parameters that are not GUCs.
var startupSkip = map[string]bool{"user": true, "database": true, "options": true, "replication": true}

func (ss *session) setStartupParams(p map[string]string) {
	for k, v := range p {
		if !startupSkip[k] {
			ss.startup[strings.ToLower(k)] = setConfigSQL(strings.ToLower(k), v)
		}
	}
	for k, v := range parseOptions(p["options"]) {
		ss.startup[k] = setConfigSQL(k, v)
	}
	if _, ok := ss.startup["application_name"]; !ok {
		ss.startup["application_name"] = defaultAppName
	}
	for k, v := range ss.startup {
		ss.desired[k] = v
	}
}

// defaultAppName is application_name for a client that did not set it:
// empty, as in Postgres (backends log in as "pgrouter", which the client
// must not see).
var defaultAppName = "SET application_name TO ''"

// defaultsOnly reports whether the client set no startup GUCs.
func (ss *session) defaultsOnly() bool {
	return len(ss.desired) == 1 && ss.desired["application_name"] == defaultAppName
}

// setConfigSQL is how a startup parameter is replayed: set_config parses the
// value exactly like the startup packet does (lists such as search_path too).
func setConfigSQL(name, value string) string {
	return "SELECT pg_catalog.set_config(" + quoteLiteral(name) + ", " + quoteLiteral(value) + ", false)"
}

// quoteLiteral reads the same whatever standard_conforming_strings the
// backend has when the statement runs: E'…' when s holds a backslash.
func quoteLiteral(s string) string {
	q := strings.ReplaceAll(s, "'", "''")
	if strings.Contains(q, `\`) {
		return "E'" + strings.ReplaceAll(q, `\`, `\\`) + "'"
	}
	return "'" + q + "'"
}

// run is the session's main loop.
func (ss *session) run() {
	defer ss.cleanup()
	if ss.admin {
		ss.runAdmin()
		return
	}
	for {
		ss.startIdleWatch()
		ss.idleStart()
		typ, body, err := ss.rd.next()
		ss.stopIdleWatch()
		if err != nil {
			switch ss.idleTimeout(err) {
			case idleSpurious:
				continue
			case idleExpired:
				return
			}
			if ss.closing.Load() {
				ss.writeClient(pgwire.AppendError(nil, pgwire.Fatal(pgwire.AdminShutdown, "terminating connection: pgrouter is shutting down")))
				return
			}
			if ss.endFenced() {
				return
			}
			var ne net.Error
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !(errors.As(err, &ne) && ne.Timeout()) {
				// A broken frame, not a closed socket: say so before closing.
				ss.writeClient(pgwire.AppendError(nil, pgwire.Fatal(pgwire.ProtocolViolation, "invalid message from client: "+err.Error())))
				ss.srv.log.Info("client protocol error", "client_id", ss.pid, "err", err)
				if errors.As(err, new(errMessageTooLong)) {
					ss.srv.guard.refusedMessage()
				}
			}
			return
		}
		ss.busy.Store(true)
		ss.quiet.Store(false) // before routing: a cutover that sees quiet knows later writes meet its gate
		ss.stringsNow()
		err = ss.dispatch(typ, body)
		ss.settle()
		ss.busy.Store(false)
		ss.shownTx.Store(uint32(ss.txStatus))
		if ss.batch.size() == 0 {
			ss.shrinkBuffers()
		}
		if err != nil {
			if !errors.Is(err, errClientGone) {
				ss.srv.log.Info("session ended", "client_id", ss.pid, "err", err)
			}
			ss.endFenced() // a write the fence cut short: say why
			return
		}
		if ss.endFenced() {
			return
		}
		if ss.closing.Load() && ss.be == nil {
			ss.writeClient(pgwire.AppendError(nil, pgwire.Fatal(pgwire.AdminShutdown, "terminating connection: pgrouter is shutting down")))
			return
		}
	}
}

// shrinkBuffers drops buffers a large message grew, once the round trip
// that needed them is over: a client that sent one 100 MB row must not keep
// 100 MB for the rest of its life. Below shrinkAbove this is a few compares.
func (ss *session) shrinkBuffers() {
	if ss.rd.shrink() {
		// A large message was handled: drop what aliases it or grew with it.
		ss.scratch, ss.args, ss.lastSQL = router.Scratch{}, router.Args{}, ""
	}
	if cap(ss.out) > shrinkAbove && len(ss.out) == 0 {
		ss.out = nil
	}
	if cap(ss.bout) > shrinkAbove { // scratch: every use starts with bout[:0]
		ss.bout = nil
	}
	if cap(ss.batch.buf) > shrinkAbove {
		ss.batch.buf = nil
	}
}

var errClientGone = errors.New("client connection closed")

func (ss *session) dispatch(typ byte, body []byte) error {
	// (A batch over several shards keeps its own skip state: ss.span.)
	if ss.skipping && ss.span == nil && typ != pgwire.Sync && typ != pgwire.Terminate {
		return nil // after an error Postgres discards everything until Sync, Query and FunctionCall too
	}
	switch typ {
	case pgwire.Query, pgwire.FunctionCall:
		// A Query inside an extended batch is answered after the batch's
		// earlier messages: send those first (with a Flush of our own).
		if len(ss.batch.msgs) > 0 {
			if err := ss.flushPending(); err != nil || ss.skipping {
				return err
			}
		}
		if ss.keptToSync {
			defer ss.endImplicitPortals() // a Query ends the implicit transaction
		}
		if typ == pgwire.FunctionCall {
			return ss.functionCall(body)
		}
		if err := ss.throttle(); err != nil {
			return ss.replyError(err, true)
		}
		return ss.simpleQuery(body)
	case pgwire.Parse, pgwire.Bind, pgwire.Describe, pgwire.Execute, pgwire.Close:
		ss.batch.add(typ, body)
		if ss.batch.size() > 1<<20 || typ == pgwire.Execute && ss.executesCopy() {
			// (Postgres sends CopyInResponse at once, without Sync or Flush.)
			return ss.flushPending()
		}
		return nil
	case pgwire.Sync:
		if ss.keptToSync {
			defer ss.endImplicitPortals()
		}
		if ss.skipping && ss.span == nil {
			return ss.endSkip()
		}
		if err := ss.throttle(); err != nil {
			ss.batch.reset() // the batch is skipped up to this Sync, as after any error
			return ss.replyError(err, true)
		}
		ss.batch.add(typ, body)
		err := ss.flushBatch(true)
		ss.skipping = false // a Sync ends any skip, whichever path answered it
		return err
	case pgwire.Flush:
		ss.batch.add(typ, body)
		return ss.flushBatch(false)
	case pgwire.Terminate:
		return errClientGone
	case pgwire.CopyData, pgwire.CopyDone, pgwire.CopyFail:
		if len(ss.batch.msgs) > 0 {
			// COPY data right behind Parse/Bind/Execute with no Sync or
			// Flush: the batch starts a COPY, whose data this is.
			ss.copyHead = appendFrame(ss.copyHead[:0], typ, body)
			err := ss.flushPending()
			ss.copyHead = ss.copyHead[:0]
			return err
		}
		return nil // copy messages outside COPY are ignored, as Postgres does
	default:
		ss.writeClient(pgwire.AppendError(nil, pgwire.Fatal(pgwire.ProtocolViolation, "invalid frontend message type "+string(rune(typ)))))
		return errors.New("protocol violation")
	}
}

// writeClient sends pending output plus b to the client.
func (ss *session) writeClient(b []byte) error {
	ss.out = append(ss.out, b...)
	return ss.flushClient()
}

func (ss *session) flushClient() error {
	if len(ss.out) == 0 {
		return nil
	}
	_, err := ss.conn.Write(ss.out)
	ss.out = ss.out[:0]
	if err != nil {
		return errClientGone
	}
	return nil
}

// replyError answers a statement the proxy refused (nothing was sent to a backend).
func (ss *session) replyError(err error, ready bool) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		pe = pgwire.Error(pgwire.InternalError, err.Error(), "")
	}
	ss.srv.Metrics.errors(pe.Code)
	ss.srv.log.Info("query refused", "client_id", ss.pid, "user", ss.user.Name, "db", ss.dbName, "sqlstate", pe.Code, "err", pe.Message)
	ss.out = pgwire.AppendError(ss.out, pe)
	// The error fails a transaction block at once, as in Postgres, also in a
	// batch whose Sync is still to come (its ReadyForQuery says E then).
	if ss.txStatus == pgwire.TxActive {
		ss.txStatus = pgwire.TxFailed
		ss.abortRefusedTx()
		if ss.be == nil && ss.pendingBegin != "" { // it could not be opened to fail there
			ss.abortDeferredTx()
		}
	}
	if ready {
		ss.out = pgwire.AppendReady(ss.out, ss.txStatus)
	}
	return ss.flushClient()
}

// abortRefusedTx makes a statement the proxy refused inside a transaction
// fail that transaction on its backend too (failTx), as any error does on
// Postgres. Without it the backend stays healthy: the client's next
// statements run there and its COMMIT keeps what ran before the refusal
// (Postgres answers 25P02, then ROLLBACK). Statements for the transaction's
// other shards get 25P02 from multiTxAllows. A transaction whose BEGIN is
// still deferred is opened (on the first shard) to be failed there: else
// the statements after the refusal would open it afresh and COMMIT would
// keep them.
func (ss *session) abortRefusedTx() {
	if ss.be == nil && (ss.pendingBegin == "" || ss.openTx(0) != nil) {
		return
	}
	ss.failTx()
}

// sqlString is a NUL-terminated query body as a string. It copies: the body
// aliases the client's read buffer, which goes back to a pool shared by all
// clients once the message is handled (frameReader.lendTo), and the text
// lives on in places that outlast that (lastSQL for the admin console, the
// deferred BEGIN, admin command arguments kept in maps). One small copy per
// Query costs less than auditing every holder for aliasing.
func sqlString(body []byte) string {
	if n := len(body); n > 0 && body[n-1] == 0 {
		body = body[:n-1]
	}
	return string(body)
}

func (ss *session) shutdownRequested() {
	ss.closing.Store(true)
	// An idle client is blocked reading; wake it so it sees the flag.
	if ss.running.Load() == nil {
		ss.conn.SetReadDeadline(time.Now())
	}
}

// cleanup returns or discards the backend when the client goes away.
func (ss *session) cleanup() {
	if ss.fenced.Load() != nil {
		ss.dropFenced()
		return
	}
	if len(ss.members) > 0 {
		ss.abandonMembers()
		return
	}
	if ss.be == nil {
		return
	}
	b := ss.be
	if ss.pinned != "" {
		ss.discard() // its session state must not reach another client
		return
	}
	if b.txStatus != pgwire.TxIdle || len(ss.queue) > 0 || ss.openBatch {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if !ss.rollback(ctx, b) {
			ss.discard()
			return
		}
	}
	ss.release()
}

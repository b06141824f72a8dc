package wire

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgrouter/pgrouter/proxy"
)

// FuzzSessionLiveness decodes the input into a sequence of well-formed
// frontend messages (fuzzOps), plays it on Postgres and through pgrouter,
// and checks liveness and the shape of the answers, not every byte:
//   - pgrouter answers with as many ReadyForQuery as Postgres did, with the
//     same status bytes, within proxyTimeout each (no hang);
//   - the stream stays in sync: a probe query after the sequence gets its
//     own answer next;
//   - the answers have the same types in the same order, errors and notices
//     the same SQLSTATEs (ParameterStatus aside);
//   - pgrouter closes the connection where Postgres does (Terminate, or a
//     protocol violation during COPY), and only there;
//   - once the client has gone, no backend stays checked out.
//
// The sequence always ends CopyFail, Sync, ROLLBACK, probe: those end any
// COPY, batch or transaction the fuzzer left open (CopyFail outside COPY is
// ignored by Postgres).
//
// Seeds: testdata/fuzz/FuzzSessionLiveness (op, argument byte pairs; the
// op indexes fuzzVocab).
//
// WIRE_FUZZ_FRESH=1 gives every input a fresh pgrouter: single-session
// liveness only (the shared instance also catches what one client leaves
// to the next, but a failure then depends on history the minimizer loses).
func FuzzSessionLiveness(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		ops := decodeOps(data)
		if len(ops) == 0 {
			return
		}
		inst := fuzzInstance(t)
		defer retireFuzzInstance(t)
		remember(data, ops)
		ref := playOps(t, env.Cluster.Shards[0].Primary.DSN("app"), ops, refTimeout)
		if ref.err != "" {
			t.Fatalf("Postgres itself: %s\nops: %s", ref.err, opNames(ops))
		}
		if ref.crashed() {
			postgresCrashed(t, ops)
		}
		got := playOps(t, proxyDSN(inst.Addr), ops, proxyTimeout)
		if got.err != "" {
			t.Fatalf("pgrouter: %s\nops: %s\npostgres answered: %s", got.err, opNames(ops), ref.status)
		}
		if got.status != ref.status || got.closed != ref.closed {
			t.Fatalf("answers differ\nops: %s\npostgres: statuses %q, closed %v\npgrouter: statuses %q, closed %v",
				opNames(ops), ref.status, ref.closed, got.status, got.closed)
		}
		if i := firstDiff(answered(ref.trace, ops), answered(got.trace, ops)); i >= 0 {
			t.Fatalf("answers differ at message %d\nops: %s\npostgres: %s\npgrouter: %s", i+1, opNames(ops),
				strings.Join(ref.trace, " "), strings.Join(got.trace, " "))
		}
		if d := heldBackends("fuzz instance", inst, 0); d != "" {
			t.Fatalf("%s\nops: %s", d, opNames(ops))
		}
	})
}

// fuzzOp is one frontend message (or a short fixed group of them).
type fuzzOp struct {
	name string
	msgs []pgproto3.FrontendMessage
}

func q(s string) *pgproto3.Query { return &pgproto3.Query{String: s} }

func stmtName(b byte) string { return []string{"", "f1", "f2"}[b%3] }

// fuzzVocab: each entry builds an op from one argument byte.
var fuzzVocab = []func(arg byte) fuzzOp{
	func(a byte) fuzzOp {
		return fuzzOp{"Parse(" + stmtName(a) + ")", []pgproto3.FrontendMessage{&pgproto3.Parse{Name: stmtName(a), Query: "select $1::int as v"}}}
	},
	func(a byte) fuzzOp {
		return fuzzOp{"ParseBad(" + stmtName(a) + ")", []pgproto3.FrontendMessage{&pgproto3.Parse{Name: stmtName(a), Query: "selec 1"}}}
	},
	func(a byte) fuzzOp {
		return fuzzOp{"Bind(" + stmtName(a) + ")", []pgproto3.FrontendMessage{&pgproto3.Bind{PreparedStatement: stmtName(a), Parameters: [][]byte{[]byte("1")}}}}
	},
	func(a byte) fuzzOp {
		return fuzzOp{"BindBad(" + stmtName(a) + ")", []pgproto3.FrontendMessage{&pgproto3.Bind{PreparedStatement: stmtName(a), Parameters: [][]byte{[]byte("x")}}}}
	},
	func(a byte) fuzzOp {
		return fuzzOp{"DescribeS(" + stmtName(a) + ")", []pgproto3.FrontendMessage{&pgproto3.Describe{ObjectType: 'S', Name: stmtName(a)}}}
	},
	func(a byte) fuzzOp {
		return fuzzOp{"DescribeP", []pgproto3.FrontendMessage{&pgproto3.Describe{ObjectType: 'P'}}}
	},
	func(a byte) fuzzOp {
		return fuzzOp{fmt.Sprintf("Execute(%d)", a%3), []pgproto3.FrontendMessage{&pgproto3.Execute{MaxRows: uint32(a % 3)}}}
	},
	func(a byte) fuzzOp {
		if a%2 == 0 {
			return fuzzOp{"CloseS(" + stmtName(a/2) + ")", []pgproto3.FrontendMessage{&pgproto3.Close{ObjectType: 'S', Name: stmtName(a / 2)}}}
		}
		return fuzzOp{"CloseP", []pgproto3.FrontendMessage{&pgproto3.Close{ObjectType: 'P'}}}
	},
	func(a byte) fuzzOp { return fuzzOp{"Flush", []pgproto3.FrontendMessage{&pgproto3.Flush{}}} },
	func(a byte) fuzzOp { return fuzzOp{"Sync", []pgproto3.FrontendMessage{&pgproto3.Sync{}}} },
	func(a byte) fuzzOp {
		qs := []string{"select 1", "select 1/0", "select 1; select 2", "select 1; select 1/0; select 3", "", "begin", "commit",
			"rollback", "savepoint sp", "rollback to savepoint sp", "insert into t values (1)", "deallocate all",
			"set statement_timeout = 0", "select generate_series(1, 3)", "prepare p1 as select 1", "execute p1"}
		s := qs[int(a)%len(qs)]
		return fuzzOp{fmt.Sprintf("Query(%q)", s), []pgproto3.FrontendMessage{q(s)}}
	},
	func(a byte) fuzzOp {
		return fuzzOp{"Query(copy in)", []pgproto3.FrontendMessage{q("copy t from stdin")}}
	},
	func(a byte) fuzzOp {
		return fuzzOp{"CopyData", []pgproto3.FrontendMessage{&pgproto3.CopyData{Data: []byte(fmt.Sprintf("%d\n", a))}}}
	},
	func(a byte) fuzzOp { return fuzzOp{"CopyDone", []pgproto3.FrontendMessage{&pgproto3.CopyDone{}}} },
	func(a byte) fuzzOp {
		return fuzzOp{"CopyFail", []pgproto3.FrontendMessage{&pgproto3.CopyFail{Message: "fuzz"}}}
	},
	func(a byte) fuzzOp {
		return fuzzOp{"Query(copy out)", []pgproto3.FrontendMessage{q("copy (select 1) to stdout")}}
	},
	func(a byte) fuzzOp {
		sql := []string{"begin", "commit", "rollback", "select 1/0", "insert into t values (2) returning a", "select generate_series(1, 4)"}[a%6]
		return fuzzOp{fmt.Sprintf("PBE(%q)", sql), []pgproto3.FrontendMessage{
			&pgproto3.Parse{Query: sql}, &pgproto3.Bind{}, &pgproto3.Execute{MaxRows: uint32(a % 2 * 2)}}}
	},
	func(a byte) fuzzOp { return fuzzOp{"Terminate", []pgproto3.FrontendMessage{&pgproto3.Terminate{}}} },
}

const maxFuzzOps = 40

// decodeOps reads (op, argument) byte pairs. A Terminate ends the sequence.
func decodeOps(data []byte) []fuzzOp {
	var ops []fuzzOp
	for i := 0; i+1 < len(data) && len(ops) < maxFuzzOps; i += 2 {
		op := fuzzVocab[int(data[i])%len(fuzzVocab)](data[i+1])
		ops = append(ops, op)
		if op.name == "Terminate" {
			break
		}
	}
	return ops
}

func opNames(ops []fuzzOp) string {
	names := make([]string, len(ops))
	for i, o := range ops {
		names[i] = o.name
	}
	return strings.Join(names, ", ")
}

// played: the ReadyForQuery status bytes seen, whether the server closed
// the connection (after a Terminate, or a protocol violation Postgres
// treats as fatal), or what went wrong (a read timeout: a hang).
type played struct {
	status string
	trace  []string // every answer's type (an error's or notice's with its SQLSTATE)
	closed bool
	err    string
}

// The probe first ends whatever transaction the sequence left (a failed one
// would refuse it), in a Query of its own: "rollback; select …" in one
// string loses the select through pgrouter after a deferred BEGIN (a known
// bug, see testdata/rollback_then_select_empty_txn.pgt).
const probeSQL = "select 'fuzz probe' as probe"

func playOps(t *testing.T, dsn string, ops []fuzzOp, timeout time.Duration) played {
	ctx, cancel := context.WithTimeout(context.Background(), refTimeout)
	defer cancel()
	c, err := dial(ctx, dsn, fuzzProfile, timeout)
	if err != nil {
		return played{err: "connect: " + err.Error()}
	}
	defer c.conn.Close()
	terminates := ops[len(ops)-1].name == "Terminate"
	for _, o := range ops {
		for _, m := range o.msgs {
			c.fe.Send(m)
		}
	}
	if !terminates {
		c.fe.Send(&pgproto3.CopyFail{Message: "fuzz end"})
		c.fe.Send(&pgproto3.Sync{})
		c.fe.Send(q("rollback"))
		c.fe.Send(q(probeSQL))
	}
	if err := c.fe.Flush(); err != nil {
		return played{err: "send: " + err.Error()}
	}
	return c.readPlayed()
}

// crashed reports a connection Postgres closed without saying why: its
// backend died (Postgres closes on a FATAL error only after sending it).
func (p played) crashed() bool {
	return p.closed && (len(p.trace) == 0 || !strings.HasPrefix(p.trace[len(p.trace)-1], "ErrorResponse"))
}

// postgresCrashed skips an input that crashes Postgres itself (seen with
// 15.18: a segfault, then crash recovery restarts every backend): there
// is nothing to compare pgrouter with, and its pools lost their backends,
// so the shared instance is retired; the next input waits for Postgres.
func postgresCrashed(t *testing.T, ops []fuzzOp) {
	retire()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin.Lock()
	if admin.conn != nil { // lost in the crash: resetSchema connects again
		admin.conn.Close(ctx)
		admin.conn = nil
	}
	admin.Unlock()
	for ctx.Err() == nil {
		c, err := pgconn.Connect(ctx, env.Cluster.Shards[0].Primary.DSN("app"))
		if err == nil {
			c.Close(ctx)
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Skipf("Postgres itself closed the connection without an error (a crash, an upstream bug): no reference to compare with\nops: %s", opNames(ops))
}

// readPlayed collects ReadyForQuery statuses until the probe's own
// ReadyForQuery or the server's close.
func (c *client) readPlayed() played {
	var p played
	sawProbe := false
	for {
		m, timedOut, err := c.receive()
		if timedOut {
			p.err = fmt.Sprintf("no answer within %s after ReadyForQuery statuses %q", c.timeout, p.status)
		}
		if err != nil {
			p.closed = true
			return p
		}
		p.trace = appendTrace(p.trace, m)
		switch m := m.(type) {
		case *pgproto3.ReadyForQuery:
			p.status += string(m.TxStatus)
			if sawProbe {
				return p
			}
		case *pgproto3.DataRow:
			if len(m.Values) == 1 && string(m.Values[0]) == "fuzz probe" {
				sawProbe = true
			}
		}
	}
}

// appendTrace records m's type; an error or notice with its SQLSTATE.
// ParameterStatus is left out: pgrouter reports settings by guc.c's rule
// (changed values only) but not always at the same message as Postgres.
func appendTrace(trace []string, m pgproto3.BackendMessage) []string {
	switch m := m.(type) {
	case *pgproto3.ParameterStatus:
		return trace
	case *pgproto3.ErrorResponse:
		return append(trace, "ErrorResponse("+m.Code+")")
	case *pgproto3.NoticeResponse:
		return append(trace, "NoticeResponse("+m.Code+")")
	}
	return append(trace, typeName(m))
}

var fuzzProfile = profile{"fuzz", "wire_fuzz", map[string]string{
	"search_path": "wire_fuzz", "application_name": "wire-fuzz", "TimeZone": "Europe/Paris"}}

var fuzzInst struct {
	sync.Mutex
	inst    *proxy.Instance
	history []string // the inputs this instance served, oldest first (capped)
}

// maxHistory: enough to replay what led to a failure (as seeds, which run
// in name order on one instance), without flooding the log.
const maxHistory = 20

// remember records an input played on the instance; a failure prints the
// history, since a session can fail because of what earlier clients did.
func remember(data []byte, ops []fuzzOp) {
	fuzzInst.Lock()
	defer fuzzInst.Unlock()
	if len(fuzzInst.history) == maxHistory {
		fuzzInst.history = fuzzInst.history[1:]
	}
	fuzzInst.history = append(fuzzInst.history, fmt.Sprintf("%q: %s", data, opNames(ops)))
}

// retireFuzzInstance drops the instance after a failure: the minimizer then
// replays candidates on a fresh pgrouter, not on one a bug already broke.
func retireFuzzInstance(t *testing.T) {
	if !t.Failed() {
		if os.Getenv("WIRE_FUZZ_FRESH") == "1" {
			retire()
		}
		return
	}
	fuzzInst.Lock()
	defer fuzzInst.Unlock()
	t.Logf("earlier clients of this pgrouter instance (oldest first, the failing one last):\n  %s",
		strings.Join(fuzzInst.history, "\n  "))
	fuzzInst.history = nil
	fuzzInst.Unlock()
	retire()
	fuzzInst.Lock()
}

func retire() {
	fuzzInst.Lock()
	defer fuzzInst.Unlock()
	if fuzzInst.inst != nil {
		go closeInstance(fuzzInst.inst)
		fuzzInst.inst = nil
	}
}

// fuzzInstance is a pgrouter with pools of 2, shared by the inputs of this
// process until one fails (a leak shows up as held backends, then as
// exhaustion); the first call creates the fuzz schema and its table.
func fuzzInstance(t *testing.T) *proxy.Instance {
	fuzzInst.Lock()
	defer fuzzInst.Unlock()
	if fuzzInst.inst != nil {
		return fuzzInst.inst
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := resetSchema(ctx, fuzzProfile.schema); err != nil {
		t.Fatal(err)
	}
	admin.Lock()
	_, err := admin.conn.Exec(ctx, "create table wire_fuzz.t (a int)")
	admin.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	inst, err := proxy.Start(ctx, coldConfig, discardLog())
	if err != nil {
		t.Fatal(err)
	}
	fuzzInst.inst = inst
	return inst
}

// firstDiff is the index of the first message where a and b differ, -1 if none.
func firstDiff(a, b []string) int {
	for i := 0; i < max(len(a), len(b)); i++ {
		if i >= len(a) || i >= len(b) || a[i] != b[i] {
			return i
		}
	}
	return -1
}

// answered is the part of a trace a client sees for certain: all of it,
// or up to the last ReadyForQuery when it ends with Terminate (Postgres
// sends an error at once, pgrouter when the batch it belongs to ends with
// Flush or Sync: a client that leaves before either sees neither).
func answered(trace []string, ops []fuzzOp) []string {
	if ops[len(ops)-1].name != "Terminate" {
		return trace
	}
	for i := len(trace) - 1; i >= 0; i-- {
		if trace[i] == "ReadyForQuery" {
			return trace[:i+1]
		}
	}
	return nil
}

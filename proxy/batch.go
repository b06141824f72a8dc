package proxy

import (
	"github.com/pgrouter/pgrouter/pgwire"
	"github.com/pgrouter/pgrouter/router"
)

// batchState is the extended-protocol batch the session is collecting or
// running: the client's messages up to Sync or Flush, what routing made of
// them (the bound plan, a refusal standing at one message), and whether
// the session skips to the next Sync after an error, as Postgres does.
// A batch over several shards keeps its own state in span (multibatch.go).
type batchState struct {
	batch         batch        // extended-protocol messages waiting for Sync/Flush
	refuseIdx     int          // routeBatch: index of the message an error refers to
	refusal       []byte       // the ErrorResponse standing in the batch at msgRefused
	copyHead      []byte       // COPY data sent right behind an unflushed Execute (see dispatch)
	args          router.Args  // scratch for Bind parameters
	boundPlan     *router.Plan // plan of the statement bound by the last Bind
	lastBound     *stmt        // statement of the batch's last Bind (routing)
	resultFormats []int16      // scratch: result formats of the last Bind
	span          *spanBatch   // a batch running over several shards, until its Sync (multibatch.go)
	openBatch     bool         // the backend is inside an extended batch not yet ended by Sync
	replicaReads  []string     // portals of SELECTs bound in the open batch on a replica (replicadrain.go)
	skipping      bool         // an extended message failed: like Postgres, ignore the client's messages until Sync
}

// batch holds extended-protocol messages until Sync or Flush, so the route
// can be decided from the Bind parameters before anything is sent.
type batch struct {
	buf  []byte
	msgs []batchMsg
}

type batchMsg struct {
	typ    byte
	off, n int
	st     *stmt // statement a P, B or D-statement refers to, resolved in order
	local  bool  // B, D-portal, E of a DEALLOCATE the proxy answers (see deallocateLocally)
	raw    bool  // B, D-statement of a name the client did not prepare through the protocol, sent as is
	prev   *stmt // P, C of a statement: what the client's name meant before (restored if Postgres skips the message)
	check  bool  // P of a name in use: sent unnamed, so that Postgres reports a wrong text before the 42P05 (refuseAt)
}

func (b *batch) add(typ byte, body []byte) {
	b.msgs = append(b.msgs, batchMsg{typ: typ, off: len(b.buf), n: len(body)})
	b.buf = append(b.buf, body...)
}

func (b *batch) body(i int) []byte { m := b.msgs[i]; return b.buf[m.off : m.off+m.n] }
func (b *batch) size() int         { return len(b.buf) }
func (b *batch) reset()            { b.buf, b.msgs = b.buf[:0], b.msgs[:0] }

// parsesClean reports whether the batch cannot fail on Postgres before
// its statement: every Parse, Bind and Describe of a statement is of a
// transaction-control statement the router parsed (any other can fail
// there: an unknown table, a parameter that does not convert), every Bind
// supplies no parameters, and every portal described or executed was
// bound in the batch. Only then may it be answered without Postgres
// (otherwise it fails there, as it must).
func (b *batch) parsesClean() bool {
	bound := false
	for i, m := range b.msgs {
		body := b.body(i)
		txControl := m.st != nil && m.st.plan != nil && !m.st.plan.Unparsed && m.st.plan.Tx != router.TxNone
		switch {
		case (m.typ == pgwire.Parse || m.typ == pgwire.Describe && len(body) > 0 && body[0] == pgwire.ObjectStatement) && !txControl:
			return false
		case m.typ == pgwire.Bind && (!txControl || m.st.numParams() > 0 || !bindFits(body, 0)):
			return false
		case m.typ == pgwire.Bind:
			bound = true
		case !bound && (m.typ == pgwire.Execute || m.typ == pgwire.Describe && len(body) > 0 && body[0] == pgwire.ObjectPortal),
			m.typ == pgwire.Close && len(body) > 0 && body[0] == pgwire.ObjectPortal: // (what follows may miss it)
			return false
		}
	}
	return true
}

// binds reports whether the batch creates a portal (has a Bind).
func (b *batch) binds() bool {
	for _, m := range b.msgs {
		if m.typ == pgwire.Bind {
			return true
		}
	}
	return false
}

// executes reports whether the batch runs a statement (has an Execute).
func (b *batch) executes() bool { return b.executions() > 0 }

// executions counts the batch's Execute messages.
func (b *batch) executions() int {
	n := 0
	for _, m := range b.msgs {
		if m.typ == pgwire.Execute {
			n++
		}
	}
	return n
}

// bindFits reports whether a Bind supplies want parameters with a valid
// number of format codes (none, one for all, or one each): what Postgres
// checks before running a statement that takes want parameters.
func bindFits(body []byte, want int) bool {
	var args router.Args
	var formats []int16
	if _, err := decodeBind(body, &args, &formats); err != nil {
		return false
	}
	nf := len(args.Formats)
	return len(args.Params) == want && (nf == 0 || nf == 1 || nf == want)
}

package proxy

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgrouter/pgrouter/pgwire"
)

// A fleet member that could not renew its membership fences itself
// (package fleet, cluster.fence): the fleet caps the pools to 0 and calls
// Server.Fence, which ends every client session (each is told why, 57P01)
// so that their backends close, and refuses new backends (57P03) until
// Unfence. A session's backends are closed, not rolled back and reused: a
// running statement is canceled first (a busy backend would not read the
// Terminate), then the session's reads of it are interrupted.

// fenceCancelTimeout bounds the cancel request sent for a running
// statement when its session is fenced (fleet.fenceBound counts on it).
const fenceCancelTimeout = time.Second

// fenceWriteTimeout bounds the write of the fence's error to a client.
const fenceWriteTimeout = 100 * time.Millisecond

// fenceState is the server's fence, swapped whole.
type fenceState struct {
	mu   sync.Mutex // serialises Fence and Unfence
	now  atomic.Pointer[fenceEpoch]
	last atomic.Pointer[pgconn.PgError] // the latest fence's refusal (for a waiter it woke)
}

// fenceEpoch is the state between two fence transitions.
type fenceEpoch struct {
	acquire context.Context // backends are acquired under it; a fence cancels it (waiters wake)
	cancel  context.CancelFunc
	refusal *pgconn.PgError // while fenced: why no backend is given (57P03); nil otherwise
	fatal   *pgconn.PgError // while fenced: what an ended session is told (57P01)
}

func (f *fenceState) init() {
	ctx, cancel := context.WithCancel(context.Background())
	f.now.Store(&fenceEpoch{acquire: ctx, cancel: cancel})
}

// Fence ends every client session with reason in its error and refuses new
// backends until Unfence. Called while fenced, it sweeps the sessions again
// (one that was binding a backend during the last sweep). It returns once
// every running statement was canceled (bounded by fenceCancelTimeout).
func (s *Server) Fence(reason string) {
	s.fence.mu.Lock()
	defer s.fence.mu.Unlock()
	e := s.fence.now.Load()
	if e.refusal == nil {
		e.cancel()
		const hint = "connect to another member of the fleet; this one serves again once it renews its membership in etcd"
		refusal := pgwire.Error(pgwire.CannotConnectNow, "this pgrouter member is fenced, cut off from the fleet: "+reason, hint)
		fatal := pgwire.Fatal(pgwire.AdminShutdown, "terminating connection: this pgrouter member is fenced, cut off from the fleet: "+reason)
		fatal.Detail = "Its backends are closed so that the fleet's connection budget (cluster.pool_budget) holds while the other members take over its share."
		fatal.Hint = hint
		e = &fenceEpoch{acquire: e.acquire, cancel: e.cancel, refusal: refusal, fatal: fatal}
		s.fence.now.Store(e)
		s.fence.last.Store(refusal)
		s.log.Warn("fenced: ending every client session and refusing backends", "reason", reason)
	}
	var wg sync.WaitGroup
	for _, ss := range s.Sessions() {
		if !ss.admin {
			wg.Go(func() { ss.fenceRequested(e.fatal) })
		}
	}
	wg.Wait()
}

// Unfence gives backends again (within the pools' cap, which the fleet
// raises once its share is granted).
func (s *Server) Unfence() {
	s.fence.mu.Lock()
	defer s.fence.mu.Unlock()
	if s.fence.now.Load().refusal == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.fence.now.Store(&fenceEpoch{acquire: ctx, cancel: cancel})
	s.log.Info("fence lifted: backends are given again")
}

// fencedError is a copy of the latest fence's refusal (clients' errors are
// written by their own sessions; a shared value must not be changed).
func (s *Server) fencedError() *pgconn.PgError {
	cp := *s.fence.last.Load()
	return &cp
}

// fenceRequested ends the session at its next step: an idle client read
// returns at once, the reads of its backends are interrupted and their
// statements canceled. A session still there at the next sweep is stuck
// writing to a client that does not read: its write is cut short too (the
// client then gets no error message: its stream may end mid-message).
func (ss *session) fenceRequested(fatal *pgconn.PgError) {
	ss.fenceMu.Lock()
	if ss.fenced.CompareAndSwap(nil, fatal) {
		ss.conn.SetReadDeadline(time.Now())
	} else if !ss.fenceCut {
		ss.fenceCut = true
		ss.conn.SetWriteDeadline(time.Now())
	}
	ss.fenceMu.Unlock()
	ss.interruptAndCancel(fenceCancelTimeout)
}

// endFenced tells a fenced session's client why it ends (once) and
// reports whether the session was fenced.
func (ss *session) endFenced() bool {
	fatal := ss.fenced.Load()
	if fatal == nil {
		return false
	}
	if ss.fenceTold {
		return true
	}
	ss.fenceTold = true
	ss.srv.Metrics.errors(fatal.Code)
	ss.fenceMu.Lock() // a sweep does not cut this write short
	defer ss.fenceMu.Unlock()
	if !ss.fenceCut {
		ss.conn.SetWriteDeadline(time.Now().Add(fenceWriteTimeout))
		ss.writeClient(pgwire.AppendError(nil, fatal))
	}
	return true
}

// dropFenced closes the backends of a fenced session without rolling
// back: Terminate ends the transaction on the server as well.
func (ss *session) dropFenced() {
	if len(ss.members) > 0 {
		for _, m := range ss.members {
			m.txStatus = pgwire.TxFailed // discarded by releaseAll
		}
		ss.endMulti("ROLLBACK")
		return
	}
	if ss.be != nil {
		ss.discard()
	}
}

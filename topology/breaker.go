package topology

import (
	"sync/atomic"
	"time"
)

// BreakerState is the state of a node's circuit breaker.
type BreakerState int32

// A node's breaker is closed while it serves; it opens when the node fails
// (health checks: connection refused or fail_threshold failures in a row;
// the proxy: a replica that cannot be dialled), and while open the node gets
// no traffic. After a cool-down it is half-open: the next health check is the
// probe, and its success closes the breaker at once, so a recovered node
// serves again within one check interval of its cool-down instead of sitting
// out a fixed ban. A failed probe keeps it open for another cool-down; a node
// that fails again right after closing (flapping) gets a doubled cool-down,
// capped at health.ban_duration.
const (
	BreakerClosed BreakerState = iota
	BreakerOpen
	BreakerHalfOpen
)

func (s BreakerState) String() string {
	switch s {
	case BreakerOpen:
		return "open"
	case BreakerHalfOpen:
		return "half_open"
	}
	return "closed"
}

// breaker is lock-free: the hot path only loads state.
type breaker struct {
	state    atomic.Int32 // BreakerState
	until    atomic.Int64 // unix ns: end of the cool-down while open
	opens    atomic.Int32 // reopenings soon after a close (flaps): doubles the cool-down
	closedAt atomic.Int64 // unix ns of the last close
	opened   atomic.Uint64
	closed   atomic.Uint64
	retries  atomic.Uint64 // reads moved elsewhere after a failed dial here (TripReplica)
}

// BreakerState is the node's breaker state now (open turns half-open when
// its cool-down has passed).
func (n *Node) BreakerState() BreakerState {
	st := BreakerState(n.brk.state.Load())
	if st == BreakerOpen && time.Now().UnixNano() >= n.brk.until.Load() {
		return BreakerHalfOpen
	}
	return st
}

// BreakerTransitions counts opens and closes of the node's breaker.
func (n *Node) BreakerTransitions() (opened, closed uint64) {
	return n.brk.opened.Load(), n.brk.closed.Load()
}

// DialRetries counts reads the proxy moved to another node because this
// replica could not be dialled.
func (n *Node) DialRetries() uint64 { return n.brk.retries.Load() }

// breakerOpen reports whether the breaker keeps traffic off the node.
func (n *Node) breakerOpen() bool { return n.brk.state.Load() != int32(BreakerClosed) }

// trip opens (or reopens) the breaker; it returns the cool-down and whether
// the breaker was closed before. An open breaker still in its cool-down is
// not extended: more failures of a node already known down add nothing. A
// node that fails again soon after its breaker closed is flapping: each such
// reopening doubles the cool-down (up to maxCool). A long outage does not
// grow it, so a node that comes back serves within a cool-down.
func (n *Node) trip(base, maxCool time.Duration) (time.Duration, bool) {
	b := &n.brk
	now := time.Now().UnixNano()
	wasClosed := b.state.Load() == int32(BreakerClosed)
	if !wasClosed && now < b.until.Load() {
		return time.Duration(b.until.Load() - now), false
	}
	if wasClosed {
		if last := b.closedAt.Load(); last != 0 && now-last <= int64(maxCool) {
			b.opens.Store(min(b.opens.Load()+1, 16))
		} else {
			b.opens.Store(0)
		}
	}
	cool := min(base<<b.opens.Load(), max(maxCool, base))
	b.until.Store(now + int64(cool))
	if b.state.Swap(int32(BreakerOpen)) == int32(BreakerClosed) {
		b.opened.Add(1)
	}
	// The half-open probe runs when the cool-down ends, not at the monitor's
	// next tick: with a long health.interval a node would otherwise wait
	// that long to serve again.
	time.AfterFunc(cool, n.requestProbe)
	return cool, wasClosed
}

// requestProbe asks the node's monitor for a check now (never blocks).
func (n *Node) requestProbe() {
	select {
	case n.probe <- struct{}{}:
	default:
	}
}

// probeSucceeded is a successful health check: it closes the breaker once
// the cool-down is over (the check is the half-open probe). It reports
// whether the breaker closed now.
func (n *Node) probeSucceeded() bool {
	b := &n.brk
	if b.state.Load() == int32(BreakerClosed) || time.Now().UnixNano() < b.until.Load() {
		return false
	}
	return n.closeBreaker()
}

func (n *Node) closeBreaker() bool {
	b := &n.brk
	if b.state.Swap(int32(BreakerClosed)) == int32(BreakerClosed) {
		return false
	}
	b.closedAt.Store(time.Now().UnixNano())
	b.closed.Add(1)
	return true
}

// breakerUntil is the end of the cool-down of an open breaker (zero otherwise).
func (n *Node) breakerUntil() time.Time {
	if !n.breakerOpen() {
		return time.Time{}
	}
	return time.Unix(0, n.brk.until.Load())
}

package fleet

import (
	"context"
	"fmt"
	"time"
)

// Self-fencing (cluster.fence). A member cut off from etcd cannot tell a
// partition (the others reach etcd, see its lease expire and take its share
// of the budget) from an etcd outage (nobody re-divides anything). With
// fence on it assumes the former: when its last successful renewal was sent
// more than fenceAfter ago it caps its pools to 0, ends every session that
// holds a backend and refuses new backends, so that all its backends are
// gone before its lease can expire. The survivors wait fenceGrace more
// after the lease expired before they hand its share out (budget.go), which
// covers a fence that had to wait for its closes. Timeline, S = when the
// last successful renewal was sent:
//
//	S + ¾·TTL            the member fences (closes start; usually done in ms)
//	S + ¾·TTL + fenceBound  every close ended or gave up (cancel + Terminate waits)
//	≥ S + TTL             the lease expires (not before: see lease.go)
//	≥ S + TTL + fenceGrace  a survivor drops the member's entry and may grow
//
// fenceGrace ≥ fenceBound, so the closes are over before anyone grows. The
// fence lifts when a renewal succeeds (the lease never expired: the entry
// is still this member's) or the member registers again; either way its
// pools grow back only through a compare-and-swap of the allocation.

// fenceBound is the longest a fence waits for its backends to end: a
// running statement's cancel request (fenceCancelTimeout in the proxy) and
// a Terminate's wait for the server (pool's closeWait, 1s), with slack.
const fenceBound = 3 * time.Second

// fenceGrace is how long survivors keep the entry of a member whose lease
// expired before they grant its share to others.
const fenceGrace = fenceBound

// fenceTick is how often the fence deadline is checked.
const fenceTick = 50 * time.Millisecond

// fenceAfter is the fence deadline: three quarters of the lease TTL
// after the last successful renewal was sent (two renewals missed).
func fenceAfter(ttl time.Duration) time.Duration { return ttl - ttl/4 }

// fencing reports whether this member fences itself when cut off.
func (f *Fleet) fencing() bool {
	cl := f.cfg.Load().Cluster
	return cl.Fence && cl.PoolBudget > 0
}

// Fenced reports whether the member is fenced now.
func (f *Fleet) Fenced() bool { return f.fenced.Load() }

// fenceLoop fences the member once its lease is older than fenceAfter,
// and while fenced sweeps again until every backend is gone.
func (f *Fleet) fenceLoop(ctx context.Context) {
	t := time.NewTicker(fenceTick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if age := f.sinceRenewed(); !f.fenced.Load() && f.fencing() && age > fenceAfter(f.grantedTTL()) {
			f.fence(ctx, age)
		}
	}
}

// fence caps the pools to 0 and ends what holds a backend, then waits up to
// fenceBound for the pools to empty, sweeping again meanwhile (a session
// that was binding a backend during a sweep is caught by the next).
func (f *Fleet) fence(ctx context.Context, age time.Duration) {
	reason := fmt.Sprintf("no renewal of its membership in etcd for %s (lease TTL %s)",
		age.Round(time.Millisecond), f.grantedTTL())
	f.capMu.Lock()
	f.fenced.Store(true)
	f.applyCapLocked(0)
	f.local.Fence(reason)
	f.capMu.Unlock()
	f.fencedGauge.Set(1)
	f.fencesTotal.Inc()
	f.log.Warn("fenced: closing every backend before the lease can expire, so that the others may take this member's share of cluster.pool_budget",
		"member", f.id, "reason", reason)
	start := time.Now()
	for f.local.MaxPoolTotal() > 0 && time.Since(start) < fenceBound {
		sleep(ctx, 100*time.Millisecond)
		f.capMu.Lock()
		if f.fenced.Load() {
			f.local.Fence(reason)
		}
		f.capMu.Unlock()
	}
	if n := f.local.MaxPoolTotal(); n > 0 && f.fenced.Load() {
		f.log.Error("fenced, but backends are still open", "member", f.id, "backends", n, "duration_ms", time.Since(start).Milliseconds())
		return
	}
	f.log.Info("fenced: every backend closed", "member", f.id, "duration_ms", time.Since(start).Milliseconds())
}

// unfence lifts the fence (the lease was renewed or the member registered
// again); the budget loop then grows the pools back to a granted share.
func (f *Fleet) unfence(why string) {
	if !f.fenced.Load() {
		return
	}
	f.capMu.Lock()
	f.fenced.Store(false)
	f.local.Unfence()
	f.capMu.Unlock()
	f.fencedGauge.Set(0)
	f.log.Info("fence lifted: backends come back within the share the budget grants", "member", f.id, "reason", why)
}

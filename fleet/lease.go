package fleet

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// The member lease. etcd ends a lease TTL after the last keepalive it
// received, and a keepalive cannot arrive before it was sent: so a member
// that notes when it SENT each keepalive that succeeded knows a time before
// which its lease cannot expire (send time + TTL; a new etcd leader only
// extends leases). The fence (fence.go) measures from that time, with the
// TTL etcd granted (a changed lease_ttl applies from the next grant).

// renewEvery is how often a keepalive is sent: a quarter of the TTL.
func renewEvery(ttl time.Duration) time.Duration { return max(ttl/4, 50*time.Millisecond) }

// clock is the time since the member started, on the monotonic clock
// (wall-clock steps must not move the fence deadline).
func (f *Fleet) clock() time.Duration { return time.Since(f.started) }

// sinceRenewed is how long ago the last successful renewal (or grant) was sent.
func (f *Fleet) sinceRenewed() time.Duration {
	return f.clock() - time.Duration(f.renewedAt.Load())
}

// grantedTTL is the member lease's TTL as etcd granted it.
func (f *Fleet) grantedTTL() time.Duration {
	if d := time.Duration(f.granted.Load()); d > 0 {
		return d
	}
	return f.leaseTTL()
}

// noteRenewed records a successful renewal sent at sent (answers may come
// back out of order: the latest send wins).
func (f *Fleet) noteRenewed(sent time.Duration) {
	for {
		old := f.renewedAt.Load()
		if int64(sent) <= old || f.renewedAt.CompareAndSwap(old, int64(sent)) {
			return
		}
	}
}

// keepRegistered sends a keepalive every renewEvery without waiting for
// the previous answer (a slow answer still proves the lease alive at its
// send time, and must not delay the next send); each is bounded by the
// TTL. When etcd answers that the lease is gone (cut off longer than the
// TTL, so the record expired) the member registers again as soon as etcd
// answers. A renewal or registration that succeeds lifts a fence.
func (f *Fleet) keepRegistered(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	lost := make(chan int64, 1)
	for ctx.Err() == nil {
		f.mu.Lock()
		lease := f.lease
		f.mu.Unlock()
		if lease == 0 {
			if err := f.register(ctx); err != nil {
				sleep(ctx, min(renewEvery(f.leaseTTL()), 500*time.Millisecond))
				continue
			}
			f.log.Info("registered in the fleet again", "member", f.id, "config_version", f.Version())
			f.unfence("registered in the fleet again")
			f.Kick()
			continue
		}
		if f.leaseTTL() != time.Duration(f.asked.Load()) {
			f.regrant(ctx, lease)
			continue
		}
		ttl := f.grantedTTL()
		wg.Go(func() { f.renew(ctx, lease, ttl, lost) })
		select {
		case <-ctx.Done():
		case <-time.After(renewEvery(ttl)):
		case gone := <-lost:
			f.mu.Lock()
			if f.lease == gone {
				f.lease = 0
				f.log.Warn("fleet membership lease lost; registering again", "member", f.id)
			}
			f.mu.Unlock()
		}
	}
}

// regrant moves the member record to a lease of the new lease_ttl (a put
// under the new lease detaches the keys from the old one, which is then
// revoked): the record never disappears meanwhile.
func (f *Fleet) regrant(ctx context.Context, old int64) {
	if err := f.register(ctx); err != nil {
		sleep(ctx, min(renewEvery(f.grantedTTL()), 500*time.Millisecond))
		return
	}
	rctx, cancel := f.st.ctx(ctx)
	f.st.cli.Revoke(rctx, leaseID(old)) // else it expires, holding nothing
	cancel()
	f.log.Info("fleet membership lease renewed with the new lease_ttl", "member", f.id, "lease_ttl", f.grantedTTL().String())
}

// renew sends one keepalive for lease, waiting at most ttl for the answer,
// and notes its outcome: renewed (and the fence lifted), or lease gone.
func (f *Fleet) renew(ctx context.Context, lease int64, ttl time.Duration, lost chan<- int64) {
	ctx, cancel := context.WithTimeout(ctx, ttl)
	defer cancel()
	sent := f.clock()
	// Not noted in the store's up flag: healthLoop tells etcd's health.
	_, err := f.st.cli.KeepAliveOnce(ctx, leaseID(lease))
	switch {
	case err == nil:
		f.noteRenewed(sent)
		if f.sinceRenewed() < fenceAfter(ttl) { // else the fence would come right back
			f.unfence("lease renewed")
		}
	case errors.Is(err, rpctypes.ErrLeaseNotFound):
		select {
		case lost <- lease:
		default: // told already
		}
	}
}

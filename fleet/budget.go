package fleet

import (
	"context"
	"encoding/json"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// The connection budget (cluster.pool_budget) is the most backends the
// whole fleet may hold per (node, user, database). Each live member's
// target is an equal share (the remainder goes to the first members by
// id). What each member may use is recorded in one key, budget/alloc,
// changed only by compare-and-swap, and the sum of its entries never
// exceeds the budget:
//   - a member lowers its own pool cap first, waits until its pools hold no
//     more than the new share, and only then lowers its entry;
//   - a member raises its entry only within what the others' entries leave
//     free, and raises its pool cap only after the swap succeeded.
// So at every instant each member's pools hold at most its entry, and the
// entries sum to at most the budget. A member starts with a cap of 0 (the
// proxy does so before it serves) and gets its share within one round.
// Entries of members whose lease expired are dropped by any survivor once
// fenceGrace passed: their process is gone, or (cluster.fence) it fenced
// itself before the lease could expire, and with it went their backends.
// (Without cluster.fence, a member that is alive but cut off from etcd keeps
// its cap while cut off, and drops to 0 once etcd answers and its record is
// gone; see docs/ARCHITECTURE.md.)
//
// A member raises its pool cap only after a compare-and-swap of the
// allocation that holds its entry succeeded, on a view of the members and
// the allocation read at one revision: a survivor that decided to drop the
// entry (it saw no record) read the allocation before that swap, so its own
// swap fails, or after it, and then it also sees the record registered
// before.

// budgetEvery is how often a member looks at the budget.
const budgetEvery = 200 * time.Millisecond

type alloc struct {
	Caps map[string]int `json:"caps"`
}

// budgetLoop keeps this member's pool cap within its entry.
func (f *Fleet) budgetLoop(ctx context.Context) {
	t := time.NewTicker(budgetEvery)
	defer t.Stop()
	for {
		f.budgetStep(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// share is member me's equal part of budget among the sorted ids.
func share(budget int, ids []string, me string) int {
	n := len(ids)
	for i, id := range ids {
		if id == me {
			if i < budget%n {
				return budget/n + 1
			}
			return budget / n
		}
	}
	return 0 // not a member
}

// budgetStep moves this member one step toward its share.
func (f *Fleet) budgetStep(ctx context.Context) {
	if f.fenced.Load() {
		return // no backend until the lease is renewed (fence.go)
	}
	budget := f.cfg.Load().Cluster.PoolBudget
	members, a, rev, err := f.budgetView(ctx)
	if err != nil {
		return // etcd away: keep the cap we have
	}
	var ids []string
	live := map[string]bool{}
	for _, m := range members {
		ids = append(ids, m.ID)
		live[m.ID] = true
	}
	if !live[f.id] {
		// Our record expired (we were cut off longer than lease_ttl) and
		// etcd answers again: the others may have taken our share already.
		// Hold nothing until we are registered again and granted a share.
		if budget > 0 {
			f.setCap(0)
		}
		return
	}
	next := alloc{Caps: map[string]int{}}
	now := time.Now()
	for id, c := range a.Caps {
		if live[id] || !f.graceOver(id, now) {
			next.Caps[id] = c
		}
	}
	for id := range f.gone {
		if _, held := a.Caps[id]; live[id] || !held {
			delete(f.gone, id) // back, or its entry is gone
		}
	}
	cur, has := next.Caps[f.id]
	if budget <= 0 { // no budget (any more): no cap, no entry
		f.setCap(-1)
		if has {
			delete(next.Caps, f.id)
			f.swapAlloc(ctx, next, rev)
		}
		return
	}
	target := share(budget, ids, f.id)
	switch {
	case has && target < cur:
		f.setCap(target) // shrink first …
		if f.local.MaxPoolTotal() > target {
			return // … busy backends close as they are released; look again soon
		}
		next.Caps[f.id] = target
	case !has || target > cur:
		others := 0
		for id, c := range next.Caps {
			if id != f.id {
				others += c
			}
		}
		grant := max(min(target, budget-others), 0)
		if has && grant <= cur && len(next.Caps) == len(a.Caps) {
			f.holdEntry(ctx, next, rev, cur, false)
			return
		}
		if has {
			grant = max(grant, cur)
		}
		next.Caps[f.id] = grant
		if f.swapAlloc(ctx, next, rev) {
			f.setCap(grant) // … grow after the entry says so
		}
		return
	default:
		f.holdEntry(ctx, next, rev, cur, len(next.Caps) != len(a.Caps))
		return
	}
	f.swapAlloc(ctx, next, rev)
}

// holdEntry sets the pool cap to this member's entry cur, writing next
// (expired entries dropped) if it differs from what was read. Lowering the
// cap needs nothing; raising it (after a fence, or a record that expired
// and came back) needs the swap first, even of an unchanged allocation.
func (f *Fleet) holdEntry(ctx context.Context, next alloc, rev int64, cur int, changed bool) {
	if f.capBelow(cur) {
		if f.swapAlloc(ctx, next, rev) {
			f.setCap(cur)
		}
		return
	}
	f.setCap(cur)
	if changed {
		f.swapAlloc(ctx, next, rev)
	}
}

// graceOver reports whether id's record has been missing for fenceGrace
// (this member's own observation, which starts no earlier than the expiry).
func (f *Fleet) graceOver(id string, now time.Time) bool {
	first, seen := f.gone[id]
	if !seen {
		f.gone[id] = now
		return false
	}
	return now.Sub(first) >= fenceGrace
}

// capBelow reports whether the pool cap is under n (no cap: never).
func (f *Fleet) capBelow(n int) bool {
	f.capMu.Lock()
	defer f.capMu.Unlock()
	return f.lastCap >= 0 && f.lastCap < n
}

// setCap sets the pool cap to n, unless the member is fenced (then only 0).
func (f *Fleet) setCap(n int) {
	f.capMu.Lock()
	defer f.capMu.Unlock()
	if f.fenced.Load() && n != 0 {
		return
	}
	f.applyCapLocked(n)
}

func (f *Fleet) applyCapLocked(n int) {
	f.local.SetPoolCap(n)
	f.capGauge.Set(float64(n))
	if n != f.lastCap {
		f.log.Info("fleet pool cap changed", "member", f.id, "from", f.lastCap, "to", n)
		f.lastCap = n
	}
}

func (f *Fleet) readAlloc(ctx context.Context) (alloc, int64, error) {
	r, err := f.st.get(ctx, f.st.key("budget", "alloc"))
	if err != nil {
		return alloc{}, 0, err
	}
	a, rev := parseAlloc(r.Kvs)
	return a, rev, nil
}

// budgetView reads the live members and the allocation at one revision
// (see the compare-and-swap argument above).
func (f *Fleet) budgetView(ctx context.Context) ([]Member, alloc, int64, error) {
	r, err := f.st.txn(ctx, nil, []clientv3.Op{
		clientv3.OpGet(f.st.key("members")+"/", clientv3.WithPrefix()),
		clientv3.OpGet(f.st.key("budget", "alloc")),
	}, nil)
	if err != nil {
		return nil, alloc{}, 0, err
	}
	members := parseMembers(r.Responses[0].GetResponseRange().Kvs)
	f.membersGauge.Set(float64(len(members)))
	a, rev := parseAlloc(r.Responses[1].GetResponseRange().Kvs)
	return members, a, rev, nil
}

// parseAlloc decodes budget/alloc (empty when absent) and its revision.
func parseAlloc(kvs []*mvccpb.KeyValue) (alloc, int64) {
	a := alloc{Caps: map[string]int{}}
	if len(kvs) == 0 {
		return a, 0
	}
	if err := json.Unmarshal(kvs[0].Value, &a); err != nil || a.Caps == nil {
		a.Caps = map[string]int{}
	}
	return a, kvs[0].ModRevision
}

// swapAlloc writes next if nobody changed the allocation since rev.
func (f *Fleet) swapAlloc(ctx context.Context, next alloc, rev int64) bool {
	key := f.st.key("budget", "alloc")
	b, _ := json.Marshal(next)
	r, err := f.st.txn(ctx, []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(key), "=", rev)},
		[]clientv3.Op{clientv3.OpPut(key, string(b))}, nil)
	return err == nil && r.Succeeded
}

// leaveBudget removes this member's entry from the allocation (Close: its
// pools are closed, so the others need not wait fenceGrace for its share).
// Best effort: a failure leaves the entry to the survivors' grace.
func (f *Fleet) leaveBudget() {
	for range 3 {
		a, rev, err := f.readAlloc(context.Background())
		if _, has := a.Caps[f.id]; err != nil || !has {
			return
		}
		delete(a.Caps, f.id)
		if f.swapAlloc(context.Background(), a, rev) {
			return
		}
	}
}

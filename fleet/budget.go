package fleet

import (
	"context"
	"encoding/json"
	"time"

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
// Entries of members whose lease expired are dropped by any survivor: their
// process is gone, and with it their backends. (A member that is alive but
// cut off from etcd keeps its cap while cut off, and drops to 0 once etcd
// answers and its record is gone; see docs/ARCHITECTURE.md.)

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
	budget := f.cfg.Load().Cluster.PoolBudget
	members, err := f.Members(ctx)
	if err != nil {
		return // etcd away: keep the cap we have
	}
	a, rev, err := f.readAlloc(ctx)
	if err != nil {
		return
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
	for id, c := range a.Caps {
		if live[id] {
			next.Caps[id] = c
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
			f.setCap(cur)
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
		f.setCap(cur)
		if len(next.Caps) == len(a.Caps) {
			return
		}
	}
	f.swapAlloc(ctx, next, rev)
}

func (f *Fleet) setCap(n int) {
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
	var a alloc
	if len(r.Kvs) == 0 {
		return alloc{Caps: map[string]int{}}, 0, nil
	}
	if err := json.Unmarshal(r.Kvs[0].Value, &a); err != nil || a.Caps == nil {
		a.Caps = map[string]int{}
	}
	return a, r.Kvs[0].ModRevision, nil
}

// swapAlloc writes next if nobody changed the allocation since rev.
func (f *Fleet) swapAlloc(ctx context.Context, next alloc, rev int64) bool {
	key := f.st.key("budget", "alloc")
	b, _ := json.Marshal(next)
	r, err := f.st.txn(ctx, []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(key), "=", rev)},
		[]clientv3.Op{clientv3.OpPut(key, string(b))}, nil)
	return err == nil && r.Succeeded
}

package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/pgrouter/pgrouter/proxy/twophase"
)

// Two-phase commit across a fleet: decisions live in etcd, not only in the
// owner's local log, so a survivor can finish what a dead member prepared.
//
//	2pc/decisions/<gid>   {"outcome":"commit"|"abort", shards…}
//	2pc/owners/<inst>     under the owner's member lease: it is alive
//	2pc/instances/<inst>  permanent: inst is a fleet member's (not a lone pgrouter's)
//
// Both the owner's commit and recovery's abort are compare-and-swap on the
// decision's absence, so exactly one is recorded. Recovery of another
// member's transaction also requires that member's owner key to be absent
// (its lease expired): a live owner's session may still be deciding. Abort
// records expire after abortTTL: by then no session can still try to commit
// (its PREPARE happened before the abort was recorded, and sessions give up
// within seconds), and the rolled-back gid exists nowhere.
const abortTTL = time.Hour

type decision struct {
	Outcome  string    `json:"outcome"`
	Shards   []string  `json:"shards,omitempty"`
	Database string    `json:"database,omitempty"`
	User     string    `json:"user,omitempty"`
	By       string    `json:"by"`
	At       time.Time `json:"at"`
}

// decisions implements twophase.Shared over the fleet's store.
type decisions struct {
	f        *Fleet
	instance string
}

// TwoPhase registers instance (this member's two-phase commit identity) and
// returns the shared decision store the coordinator uses.
func (f *Fleet) TwoPhase(ctx context.Context, instance string) (twophase.Shared, error) {
	f.twoPC.Store(&instance)
	if err := f.st.put(ctx, f.st.key("2pc", "instances", instance), time.Now().UTC().Format(time.RFC3339)); err != nil {
		return nil, err
	}
	return &decisions{f: f, instance: instance}, nil
}

func (d *decisions) key(gid string) string { return d.f.st.key("2pc", "decisions", gid) }

func (d *decisions) Ready() bool { return d.f.st.Up() }

func (d *decisions) Commit(ctx context.Context, dec twophase.Decision) (bool, error) {
	b, _ := json.Marshal(decision{Outcome: "commit", Shards: dec.Shards, Database: dec.Database, User: dec.User,
		By: d.f.id, At: time.Now().UTC()})
	key := d.key(dec.GID)
	r, err := d.f.st.txn(ctx, []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(key), "=", 0)},
		[]clientv3.Op{clientv3.OpPut(key, string(b))}, []clientv3.Op{clientv3.OpGet(key)})
	if err != nil {
		return false, err
	}
	if r.Succeeded {
		return true, nil
	}
	got, _ := decode(r.Responses[0].GetResponseRange().Kvs)
	return got != nil && got.Outcome == "commit", nil
}

func (d *decisions) Resolve(ctx context.Context, gid, owner string, own bool) (twophase.Outcome, []string, error) {
	key := d.key(gid)
	ownerKey := d.f.st.key("2pc", "owners", owner)
	instKey := d.f.st.key("2pc", "instances", owner)
	if !own {
		// A live owner finishes its own transactions, committed ones too
		// (its local log retries them): acting beside it would only turn
		// its clean COMMIT into a warning about a shard that "lags".
		r, err := d.f.st.get(ctx, ownerKey)
		if err != nil || len(r.Kvs) > 0 {
			return twophase.Undecided, nil, err
		}
	}
	lease, err := d.f.st.grant(ctx, abortTTL)
	if err != nil {
		return twophase.Undecided, nil, err
	}
	cmp := []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(key), "=", 0)}
	if !own {
		cmp = append(cmp, clientv3.Compare(clientv3.CreateRevision(ownerKey), "=", 0),
			clientv3.Compare(clientv3.CreateRevision(instKey), ">", 0))
	}
	b, _ := json.Marshal(decision{Outcome: "abort", By: d.f.id, At: time.Now().UTC()})
	r, err := d.f.st.txn(ctx, cmp, []clientv3.Op{clientv3.OpPut(key, string(b), clientv3.WithLease(lease))},
		[]clientv3.Op{clientv3.OpGet(key)})
	if err != nil {
		return twophase.Undecided, nil, err
	}
	if r.Succeeded {
		return twophase.Abort, nil, nil
	}
	ctx2, cancel := d.f.st.ctx(ctx)
	d.f.st.cli.Revoke(ctx2, lease) // unused
	cancel()
	got, err := decode(r.Responses[0].GetResponseRange().Kvs)
	switch {
	case err != nil:
		return twophase.Undecided, nil, err
	case got == nil:
		return twophase.Undecided, nil, nil // owner alive, or not a fleet member's gid
	case got.Outcome == "commit":
		return twophase.Commit, got.Shards, nil
	default:
		return twophase.Abort, nil, nil
	}
}

func (d *decisions) Forget(ctx context.Context, gid string) {
	ctx, cancel := d.f.st.ctx(ctx)
	defer cancel()
	_, err := d.f.st.cli.Delete(ctx, d.key(gid))
	d.f.st.note(err) // a leftover record of a finished gid is harmless
}

func decode(kvs []*mvccpb.KeyValue) (*decision, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	var dec decision
	if err := json.Unmarshal(kvs[0].Value, &dec); err != nil {
		return nil, errors.New("unreadable two-phase commit decision in etcd: " + err.Error())
	}
	return &dec, nil
}

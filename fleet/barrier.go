package fleet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Handler runs a fleet operation on this member; arg is the operation's
// argument (a database name for PAUSE/RESUME). An error is reported to the
// member that started the operation.
type Handler func(ctx context.Context, arg string) error

// op is one fleet-wide operation as published under ops/<id>.
type op struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	Arg     string    `json:"arg"`
	Members []string  `json:"members"` // who must acknowledge
	By      string    `json:"by"`
	Lease   int64     `json:"lease"` // the op and its acks expire with it
	At      time.Time `json:"at"`
}

type ack struct {
	OK  bool   `json:"ok"`
	Err string `json:"err,omitempty"`
}

// Handle registers what this member does for the operation name (the
// reshard cutover registers its own). PAUSE, RESUME and RELOAD are built in.
func (f *Fleet) Handle(name string, h Handler) { f.handlers.Store(strings.ToUpper(name), h) }

func (f *Fleet) registerHandlers() {
	f.Handle("PAUSE", func(ctx context.Context, db string) error { return f.local.Pause(ctx, db) })
	f.Handle("RESUME", func(_ context.Context, db string) error { return f.local.Resume(db) })
	f.Handle("RELOAD", func(ctx context.Context, _ string) error { return f.ReloadLocal(ctx) })
	f.registerReshardHandlers()
}

// Run is a fleet operation as the admin console asks for it: Barrier, and
// when a PAUSE did not reach every member, a RESUME addressed to every
// member the PAUSE was (a member that was away runs both, in order, when it
// comes back), so that a failed PAUSE leaves no member paused.
func (f *Fleet) Run(ctx context.Context, name, arg string) error {
	o, err := f.barrier(ctx, name, arg, nil)
	if err == nil || !strings.EqualFold(name, "PAUSE") || o.ID == "" {
		return err
	}
	if _, uerr := f.barrier(ctx, "RESUME", arg, o.Members); uerr != nil {
		return fmt.Errorf("%w; resuming the members that paused failed too: %v", err, uerr)
	}
	return fmt.Errorf("%w; the members that paused were resumed", err)
}

// Barrier publishes the operation name(arg) for every live member and
// waits until each has acknowledged it, at most cluster.barrier_timeout.
// It fails, naming them, when a member reports an error, leaves the fleet
// or does not answer in time; with etcd unreachable it fails at once.
// Members run operations one at a time, in the order they were published.
func (f *Fleet) Barrier(ctx context.Context, name, arg string) error {
	_, err := f.barrier(ctx, name, arg, nil)
	return err
}

// barrier publishes the operation to the live members and also to extra
// (who get it when they come back), and waits for the live ones. o.ID is
// empty when nothing was published.
func (f *Fleet) barrier(ctx context.Context, name, arg string, extra []string) (op, error) {
	name = strings.ToUpper(name)
	members, err := f.Members(ctx)
	if err != nil {
		return op{}, fmt.Errorf("fleet %s refused: %w", name, err)
	}
	timeout := f.cfg.Load().Cluster.BarrierTimeout.D()
	lease, err := f.st.grant(ctx, timeout+time.Minute)
	if err != nil {
		return op{}, fmt.Errorf("fleet %s refused: %w", name, err)
	}
	o := op{ID: newOpID(), Name: name, Arg: arg, By: f.id, Lease: int64(lease), At: time.Now().UTC()}
	var live []string
	for _, m := range members {
		live = append(live, m.ID)
	}
	o.Members = live
	for _, id := range extra {
		if !slices.Contains(o.Members, id) {
			o.Members = append(o.Members, id)
		}
	}
	b, _ := json.Marshal(o)
	if err := f.st.put(ctx, f.st.key("ops", o.ID), string(b), clientv3.WithLease(lease)); err != nil {
		return op{}, fmt.Errorf("fleet %s refused: %w", name, err)
	}
	f.log.Info("fleet operation started", "op", name, "arg", arg, "op_id", o.ID, "members", strings.Join(o.Members, ","))
	return o, f.awaitAcks(ctx, o, live, time.Now().Add(timeout))
}

// awaitAcks polls the acknowledgements of o until every member of wait
// answered, the ones still missing left the fleet, or the deadline passed.
func (f *Fleet) awaitAcks(ctx context.Context, o op, wait []string, deadline time.Time) error {
	var acks map[string]ack
	var live []Member
	for {
		a, aerr := f.acks(ctx, o.ID)
		l, lerr := f.Members(ctx)
		if aerr == nil && lerr == nil {
			acks, live = a, l
		}
		if aerr != nil || lerr != nil {
			if time.Now().After(deadline) {
				return fmt.Errorf("fleet %s: %v", o.Name, firstErr(aerr, lerr))
			}
		} else {
			problems, waiting := judge(wait, acks, live, time.Now().After(deadline))
			if !waiting {
				if len(problems) == 0 {
					f.log.Info("fleet operation acknowledged by every member", "op", o.Name, "op_id", o.ID)
					return nil
				}
				return fmt.Errorf("fleet %s not completed: %s", o.Name, strings.Join(problems, "; "))
			}
		}
		select {
		case <-ctx.Done():
			if acks != nil { // name who had not answered when the caller gave up
				problems, _ := judge(wait, acks, live, true)
				return fmt.Errorf("fleet %s not completed: %s: %w", o.Name, strings.Join(problems, "; "), ctx.Err())
			}
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// judge says which members of wait failed and whether any may still answer.
func judge(wait []string, acks map[string]ack, live []Member, late bool) (problems []string, waiting bool) {
	alive := map[string]bool{}
	for _, m := range live {
		alive[m.ID] = true
	}
	for _, id := range wait {
		a, answered := acks[id]
		switch {
		case answered && !a.OK:
			problems = append(problems, fmt.Sprintf("member %s failed: %s", id, a.Err))
		case answered:
		case !alive[id]:
			problems = append(problems, fmt.Sprintf("member %s left the fleet without acknowledging", id))
		case late:
			problems = append(problems, fmt.Sprintf("member %s did not acknowledge in time (cluster.barrier_timeout)", id))
		default:
			waiting = true
		}
	}
	sort.Strings(problems)
	return problems, waiting
}

func (f *Fleet) acks(ctx context.Context, id string) (map[string]ack, error) {
	prefix := f.st.key("acks", id) + "/"
	r, err := f.st.get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, err
	}
	out := map[string]ack{}
	for _, kv := range r.Kvs {
		var a ack
		if json.Unmarshal(kv.Value, &a) == nil {
			out[strings.TrimPrefix(string(kv.Key), prefix)] = a
		}
	}
	return out, nil
}

// watchOps runs every operation published after rev that names this member.
func (f *Fleet) watchOps(ctx context.Context, rev int64) {
	prefix := f.st.key("ops") + "/"
	for ctx.Err() == nil {
		wch := f.st.cli.Watch(clientv3.WithRequireLeader(ctx), prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
		for resp := range wch {
			if resp.Err() != nil {
				break
			}
			for _, ev := range resp.Events {
				rev = max(rev, ev.Kv.ModRevision)
				var o op
				if ev.Type != clientv3.EventTypePut || json.Unmarshal(ev.Kv.Value, &o) != nil || !slices.Contains(o.Members, f.id) {
					continue
				}
				f.runOp(ctx, o) // in order: a RESUME never overtakes its PAUSE
			}
		}
		sleep(ctx, 200*time.Millisecond)
	}
}

// runOp runs o here and acknowledges it.
func (f *Fleet) runOp(ctx context.Context, o op) {
	a := ack{OK: true}
	h, ok := f.handlers.Load(o.Name)
	if !ok {
		a = ack{Err: fmt.Sprintf("this member does not know the operation %q", o.Name)}
	} else {
		octx, cancel := context.WithTimeout(ctx, f.cfg.Load().Cluster.BarrierTimeout.D())
		if err := h.(Handler)(octx, o.Arg); err != nil {
			a = ack{Err: err.Error()}
		}
		cancel()
	}
	f.log.Info("fleet operation run", "op", o.Name, "arg", o.Arg, "op_id", o.ID, "by", o.By, "ok", a.OK, "err", a.Err)
	b, _ := json.Marshal(a)
	for i := 0; i < 5 && ctx.Err() == nil; i++ { // etcd may blink; the initiator waits
		if f.st.put(ctx, f.st.key("acks", o.ID, f.id), string(b), clientv3.WithLease(leaseID(o.Lease))) == nil {
			return
		}
		sleep(ctx, 200*time.Millisecond)
	}
}

func newOpID() string {
	var r [4]byte
	rand.Read(r[:])
	return fmt.Sprintf("%d-%s", time.Now().UnixNano(), hex.EncodeToString(r[:]))
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

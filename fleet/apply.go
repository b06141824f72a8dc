package fleet

import (
	"context"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// catchUpEvery is how often a member re-reads the newest version even
// without a watch event: after an etcd outage the watch may have missed
// it, and the member must catch up when etcd returns.
const catchUpEvery = 2 * time.Second

// watchConfig applies every new version as it is published.
func (f *Fleet) watchConfig(ctx context.Context) {
	t := time.NewTicker(catchUpEvery)
	defer t.Stop()
	wch := f.st.cli.Watch(clientv3.WithRequireLeader(ctx), f.st.key("config", "doc"))
	for {
		select {
		case <-ctx.Done():
			return
		case resp, ok := <-wch:
			if !ok || resp.Err() != nil { // lost leader or compacted: watch again
				sleep(ctx, 200*time.Millisecond)
				wch = f.st.cli.Watch(clientv3.WithRequireLeader(ctx), f.st.key("config", "doc"))
			}
		case <-f.kick:
		case <-t.C:
		}
		f.sync(ctx, false)
	}
}

// sync applies the newest published version if it is newer than the
// running one (or, with again, also when it is the same: RELOAD), and
// brings the reshards' holds and marks in line with etcd.
func (f *Fleet) sync(ctx context.Context, again bool) error {
	f.applyMu.Lock()
	defer f.applyMu.Unlock()
	_, err := f.syncLocked(ctx, again)
	return err
}

// syncLocked is sync under applyMu; it returns the reshard records it read.
func (f *Fleet) syncLocked(ctx context.Context, again bool) (map[string]*Reshard, error) {
	recs, _, err := f.st.reshards(ctx)
	if err != nil {
		return nil, err
	}
	f.settleReshards(ctx, recs)
	applied := f.Version()
	err = f.applyNewest(ctx, again, recs)
	if f.Version() != applied { // the records may have moved on too (read before the version)
		if fresh, _, rerr := f.st.reshards(ctx); rerr == nil {
			recs = fresh
		}
	}
	f.settleReshards(ctx, recs)
	return recs, err
}

// applyNewest applies the newest version when sync says so. A version
// that switched a reshard (or one after it, applied by a member that
// missed it) is installed as that reshard's switch: its moves are
// accepted, and it lowers the reshard's hold. While a hold waits for its
// reshard's version, no other version is applied.
func (f *Fleet) applyNewest(ctx context.Context, again bool, recs map[string]*Reshard) error {
	doc, err := f.st.Current(ctx)
	if err != nil {
		return err
	}
	if doc == nil || doc.Version < f.Version() || (doc.Version == f.Version() && !again) {
		return nil
	}
	if !again && doc.Version == f.failed.Load() {
		return nil // refused already; said so once
	}
	// The reshard this version switches: its tag, or (a member that missed
	// it) one switched between the running version and this one.
	id := doc.Reshard
	if id == "" {
		id = switchedBy(recs, f.Version(), doc.Version)
	}
	if held := f.local.HeldReshard(); held != "" && held != id {
		if r := recs[held]; r != nil && r.Version == 0 && r.Phase == PhaseCutover {
			return nil
		}
	}
	cfg, err := f.load(doc)
	if err == nil {
		if id != "" {
			if r := recs[id]; r != nil && doc.Reshard == id {
				err = sameMoves(f.cfg.Load(), cfg, r)
			}
			if err == nil {
				err = f.local.SwitchMoves(id, cfg)
			}
		} else {
			err = f.local.ApplyConfig(cfg, doc.Force)
		}
	}
	if err != nil {
		f.failed.Store(doc.Version)
		f.refusedGauge.Set(float64(doc.Version))
		f.log.Error("fleet config version refused; the running version stays", "version", doc.Version,
			"running", f.Version(), "err", err.Error())
		err = fmt.Errorf("version %d refused: %w", doc.Version, err)
		health := err.Error()
		f.health.Store(&health)
		f.updateRecord(ctx)
		return err
	}
	f.setApplied(doc, cfg, "ok")
	f.log.Info("fleet config version applied", "version", doc.Version, "source", doc.Source)
	f.updateRecord(ctx)
	return nil
}

// ReloadLocal re-reads the newest version and applies it to this member
// (the console's RELOAD and SIGHUP on a fleet member).
func (f *Fleet) ReloadLocal(ctx context.Context) error {
	return f.sync(ctx, true)
}

// healthLoop asks etcd something cheap every second, so that an outage
// shows in logs and metrics even when nothing else talks to etcd, and a
// return triggers a catch-up.
func (f *Fleet) healthLoop(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	wasUp := true
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		_, err := f.st.get(ctx, f.st.key("config", "version"))
		up := err == nil
		if ctx.Err() != nil {
			return
		}
		switch {
		case wasUp && !up:
			f.upGauge.Set(0)
			f.log.Warn("etcd unreachable: serving the last applied config; fleet changes are refused until it answers",
				"etcd", f.st.URL(), "config_version", f.Version(), "err", err.Error())
		case !wasUp && up:
			f.upGauge.Set(1)
			f.log.Info("etcd reachable again; catching up", "etcd", f.st.URL(), "config_version", f.Version())
			f.Kick()
		}
		wasUp = up
	}
}

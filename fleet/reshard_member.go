package fleet

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/pgrouter/pgrouter/config"
	"github.com/pgrouter/pgrouter/router/sharding"
)

// What a member does for the reshards recorded in etcd (see reshard.go).
// Everything here runs under applyMu, with the config watch: holds, the
// version applied and the marks change one at a time.

func (f *Fleet) registerReshardHandlers() {
	f.Handle(opReshardMarks, f.onReshardMarks)
	f.Handle(opReshardHold, f.onReshardHold)
	f.Handle(opReshardSwitch, f.onReshardSwitch)
	f.Handle(opReshardRelease, f.onReshardRelease)
}

// onReshardMarks applies the marks of every recorded reshard (after
// running the newest version). In the clean-up it also confirms that this
// member runs the version that switched: the engine is about to delete the
// moved rows on the sources.
func (f *Fleet) onReshardMarks(ctx context.Context, id string) error {
	f.applyMu.Lock()
	defer f.applyMu.Unlock()
	recs, err := f.syncLocked(ctx, false)
	if err != nil {
		return err
	}
	if r := recs[id]; r != nil && r.Phase == PhaseCleanup && !f.switchedHere(r) {
		return f.notSwitched(r)
	}
	return nil
}

// onReshardHold holds the moving keys' writes and drains (the hold stays
// up when it returns).
func (f *Fleet) onReshardHold(ctx context.Context, id string) error {
	f.applyMu.Lock()
	defer f.applyMu.Unlock()
	recs, _, err := f.st.reshards(ctx)
	if err != nil {
		return err
	}
	r := recs[id]
	if r == nil || r.Phase != PhaseCutover || r.published() {
		return fmt.Errorf("reshard %s is not waiting for its cutover hold", id)
	}
	f.settleReshards(ctx, recs) // lowers a stale hold, raises this one
	if held := f.local.HeldReshard(); held != id {
		return f.holdFor(ctx, r) // says why it cannot hold
	}
	return nil
}

// onReshardSwitch runs the reshard's version, which lowers the hold.
func (f *Fleet) onReshardSwitch(ctx context.Context, id string) error {
	f.applyMu.Lock()
	defer f.applyMu.Unlock()
	recs, err := f.syncLocked(ctx, false)
	if err != nil {
		return err
	}
	r := recs[id]
	switch {
	case r == nil || !r.published():
		return fmt.Errorf("reshard %s has no published switch", id)
	case !f.switchedHere(r):
		return f.notSwitched(r)
	case f.local.HeldReshard() == id:
		return fmt.Errorf("still holds for reshard %s", id)
	}
	return nil
}

// onReshardRelease lowers the hold of a cutover that published nothing.
func (f *Fleet) onReshardRelease(ctx context.Context, id string) error {
	f.applyMu.Lock()
	defer f.applyMu.Unlock()
	_, err := f.syncLocked(ctx, false) // releases what the record no longer justifies
	if err == nil && f.local.HeldReshard() == id {
		err = fmt.Errorf("still holds for reshard %s: its record says the cutover goes on", id)
	}
	return err
}

// switchedHere: this member switched r (runs its version; for a directory
// reshard: dropped its cached mappings after the lookup table was pointed).
func (f *Fleet) switchedHere(r *Reshard) bool {
	if r.directory() {
		return r.Pointed && f.pointed[r.ID]
	}
	return r.Version > 0 && f.Version() >= r.Version
}

// notSwitched says why this member has not switched r.
func (f *Fleet) notSwitched(r *Reshard) error {
	if r.directory() {
		return fmt.Errorf("has not dropped its cached directory mappings for reshard %s yet", r.ID)
	}
	return fmt.Errorf("runs config version %d, not yet %d, which switched reshard %s: %s", f.Version(), r.Version, r.ID, *f.health.Load())
}

// engineCutoverBound is how long the engine's cutover may take from the
// hold to the published version (package reshard's cutoverTimeout).
const engineCutoverBound = 10 * time.Second

// holdFor raises r's hold here. It turns refusing when no switch or
// release came within what a running initiator needs at most: its
// cutover's bound, then the switch barrier's cluster.barrier_timeout.
func (f *Fleet) holdFor(ctx context.Context, r *Reshard) error {
	bt := f.cfg.Load().Cluster.BarrierTimeout.D()
	hctx, cancel := context.WithTimeout(ctx, bt) // the drain, also when no barrier bounds it (settleReshards)
	defer cancel()
	if r.directory() {
		moves, err := r.keyMoves(f.cfg.Load())
		if err != nil {
			return err
		}
		return f.local.HoldKeys(hctx, r.ID, moves, engineCutoverBound+bt)
	}
	next, err := f.load(&Doc{YAML: r.Next})
	if err != nil {
		return fmt.Errorf("reshard %s: its next config: %w", r.ID, err)
	}
	return f.local.HoldMoves(hctx, r.ID, next, engineCutoverBound+bt)
}

// followPointers switches every directory reshard whose lookup table the
// records say is pointed and this member has not switched yet: its cached
// mappings of the table are dropped, then its hold lowered (SwitchKeys).
// A finished one is switched too (cheap: a member that missed it drops
// mappings that may be stale), but a failure is not retried.
func (f *Fleet) followPointers(recs map[string]*Reshard) {
	for _, id := range sortedIDs(recs) {
		r := recs[id]
		if !r.directory() || !r.Pointed || f.pointed[id] || r.Phase == PhaseAborted {
			continue
		}
		moves, err := r.keyMoves(f.cfg.Load())
		if err == nil {
			err = f.local.SwitchKeys(id, moves)
		}
		if err != nil && r.Phase != PhaseDone {
			f.log.Warn("reshard: the lookup table points the keys at the target, but this member could not switch; it keeps holding them", "reshard", id, "err", err.Error())
			continue
		}
		f.pointed[id] = true
		f.log.Info("reshard directory switch: cached mappings dropped", "reshard", id)
	}
}

// settleReshards brings this member's holds and marks in line with the
// records: a directory reshard recorded as pointed is switched here
// (followPointers), a hold whose reshard is out of its cutover unpublished is
// lowered (a version lowers it when applied, never this), a reshard in its
// cutover is held (a member that joined or came back during it), and the
// marks are set to what the records say for the version running here.
func (f *Fleet) settleReshards(ctx context.Context, recs map[string]*Reshard) {
	f.followPointers(recs)
	if held := f.local.HeldReshard(); held != "" {
		if r := recs[held]; r == nil || (!r.published() && r.Phase != PhaseCutover) {
			f.local.ReleaseMoves(held)
			f.log.Info("reshard cutover released: its record is out of the cutover with no version", "reshard", held)
		}
	}
	if f.local.HeldReshard() == "" {
		for _, id := range sortedIDs(recs) {
			if r := recs[id]; r.Phase == PhaseCutover && !r.published() && !f.switched(id) {
				if err := f.holdFor(ctx, r); err != nil {
					f.log.Warn("reshard cutover in progress, but this member could not hold", "reshard", id, "err", err.Error())
				}
				break
			}
		}
	}
	f.applyMarks(recs)
}

// switched: the running version is the one reshard id published (records
// read just before it was published still show the cutover).
func (f *Fleet) switched(id string) bool {
	d := f.doc.Load()
	return d != nil && d.Reshard == id
}

// applyMarks sets the marks every recorded reshard calls for here.
func (f *Fleet) applyMarks(recs map[string]*Reshard) {
	var copies, leftovers []sharding.Move
	for _, r := range recs {
		c, l := r.marks(f.Version(), f.pointed[r.ID])
		for _, m := range r.Moves {
			if c {
				copies = append(copies, m.move())
			}
			if l {
				leftovers = append(leftovers, m.move())
			}
		}
	}
	f.local.SetReshardMarks(copies, leftovers)
}

// sameMoves checks that going from cur to next moves exactly r's rows: a
// member accepts a reshard's version as that reshard's switch only.
func sameMoves(cur, next *config.Config, r *Reshard) error {
	moves, err := sharding.PlanMoves(cur, next)
	if err != nil {
		return err
	}
	want := map[moveName]bool{}
	for _, m := range r.Moves {
		want[m.name()] = true
	}
	for _, m := range moveRefs(moves) {
		if !want[m.name()] {
			return fmt.Errorf("it moves table %q of database %q from %s to %s, which reshard %s does not", m.Table, m.Database, m.From, m.To, r.ID)
		}
		delete(want, m.name())
	}
	for m := range want {
		return fmt.Errorf("reshard %s moves table %q of database %q from %s to %s, which it does not (does this member run another placement?)", r.ID, m.Table, m.Database, m.From, m.To)
	}
	return nil
}

// switchedBy is the reshard, if any, that a version after applied up to v
// switched: applying v then moves exactly its rows.
func switchedBy(recs map[string]*Reshard, applied, v int64) string {
	for _, id := range sortedIDs(recs) {
		if r := recs[id]; r.Version > applied && r.Version <= v && r.Phase != PhaseAborted {
			return id
		}
	}
	return ""
}

func sortedIDs(recs map[string]*Reshard) []string {
	ids := make([]string, 0, len(recs))
	for id := range recs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

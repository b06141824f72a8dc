package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/pgrouter/pgrouter/config"
	"github.com/pgrouter/pgrouter/router/sharding"
)

// A reshard in a fleet. The engine (package reshard) runs on the member
// whose console started it; everything the other members must do with it
// goes through etcd:
//
//	reshard/<id>   the Reshard record: next config, moves, phase, and the
//	               version that switched. Every member derives its marks
//	               from the records (at join, after every change it hears
//	               of, and every catchUpEvery), and a member that joins
//	               while the phase is "cutover" holds too.
//	ops/…          the barrier: RESHARD-MARKS (apply the marks; in the
//	               clean-up also: run the switched version), RESHARD-HOLD
//	               (hold and drain), RESHARD-SWITCH (run the switched
//	               version, which lowers the hold), RESHARD-RELEASE (lower
//	               the hold: the cutover failed before anything switched).
//	config/…       the next placement, published as a version tagged with
//	               the reshard's id, in the same etcd transaction that
//	               records it as the reshard's version.
//
// A directory reshard (RESHARD DIRECTORY) changes no config: its moves
// carry the keys, and its switch is the lookup table, pointed at the
// target by the engine with every member holding. The record then says
// Pointed (by a compare-and-swap on the cutover record, as the version's
// publish); each member drops its cached mappings of the table before it
// lowers its hold (RESHARD-SWITCH, or its next look at the records: a
// member that joins later starts with an empty cache and reads the lookup
// table itself). If nothing was recorded after the engine pointed the
// lookup table, it points it back before any member is released.
//
// The invariant: no member routes a moving key's write to the old shard
// once any member may have routed one to the new shard. A member routes to
// the new shard only once the version is published; a member that held
// lowers its hold onto the old placement only on RESHARD-RELEASE or when
// the record is out of its cutover with no version (both are written only
// when no version was published); otherwise it keeps holding, and after
// cluster.barrier_timeout refuses those statements, until it sees the
// version.

// Reshard phases as recorded (the engine's, plus "cutover" while held).
const (
	PhaseCopy    = "copy"
	PhaseCutover = "cutover"
	PhaseCleanup = "cleanup"
	PhaseDone    = "done"
	PhaseAborted = "aborted"
)

// The barrier operations of a reshard (their argument: the reshard id).
const (
	opReshardMarks   = "RESHARD-MARKS"
	opReshardHold    = "RESHARD-HOLD"
	opReshardSwitch  = "RESHARD-SWITCH"
	opReshardRelease = "RESHARD-RELEASE"
)

// Reshard is one reshard as the fleet records it under reshard/<id>.
type Reshard struct {
	ID      string    `json:"id"`
	By      string    `json:"by"`    // the member running the engine
	Next    string    `json:"next"`  // the next config (YAML)
	Moves   []MoveRef `json:"moves"` // what moves (names only: enough for marks)
	Phase   string    `json:"phase"`
	Version int64     `json:"version,omitempty"` // the config version that switched it; 0 before
	Pointed bool      `json:"pointed,omitempty"` // a directory reshard: the lookup table points the keys at the target
	At      time.Time `json:"at"`
}

// MoveRef names one move: rows of Table in Database go From → To (of a
// directory reshard: the rows of Keys).
type MoveRef struct {
	Database string   `json:"database"`
	Table    string   `json:"table"`
	From     string   `json:"from"`
	To       string   `json:"to"`
	Keys     []string `json:"keys,omitempty"`
}

func (m MoveRef) move() sharding.Move {
	return sharding.Move{Database: m.Database, Table: m.Table, From: m.From, To: m.To, Keys: m.Keys}
}

// moveName is a move without its keys (comparable).
type moveName struct{ Database, Table, From, To string }

func (m MoveRef) name() moveName { return moveName{m.Database, m.Table, m.From, m.To} }

func moveRefs(moves []sharding.Move) []MoveRef {
	out := make([]MoveRef, len(moves))
	for i, m := range moves {
		out[i] = MoveRef{Database: m.Database, Table: m.Table, From: m.From, To: m.To, Keys: m.Keys}
	}
	return out
}

// directory: r moves directory keys (its switch is the lookup table).
func (r *Reshard) directory() bool {
	return len(r.Moves) > 0 && r.Moves[0].Keys != nil
}

// published: r's switch is recorded (its version, or the lookup table
// pointed); from then on no member is released onto the old placement.
func (r *Reshard) published() bool { return r.Version > 0 || r.Pointed }

// keyMoves are a directory reshard's moves, with their keys, under cfg.
func (r *Reshard) keyMoves(cfg *config.Config) ([]sharding.Move, error) {
	out := make([]sharding.Move, 0, len(r.Moves))
	for _, m := range r.Moves {
		km, err := sharding.DirectoryMove(cfg, m.Database, m.Table, m.From, m.To, m.Keys)
		if err != nil {
			return nil, fmt.Errorf("reshard %s: %w", r.ID, err)
		}
		out = append(out, km)
	}
	return out, nil
}

// marks is what a member keeps marked for r: copies on the To shards until
// it switched (runs r's version, which was applied here; or, pointedHere,
// dropped its cached mappings of a directory reshard), the sources'
// leftovers once it did (and from the clean-up on, everywhere).
func (r *Reshard) marks(applied int64, pointedHere bool) (copies, leftovers bool) {
	if r.Phase == PhaseDone || r.Phase == PhaseAborted {
		return false, false
	}
	switched := r.Version > 0 && applied >= r.Version
	if r.directory() {
		switched = r.Pointed && pointedHere
	}
	return !switched, switched || r.Phase == PhaseCleanup
}

// reshards reads every recorded reshard, by id, with its mod revision.
func (s *Store) reshards(ctx context.Context) (map[string]*Reshard, map[string]int64, error) {
	prefix := s.key("reshard") + "/"
	r, err := s.get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, nil, err
	}
	out, revs := map[string]*Reshard{}, map[string]int64{}
	for _, kv := range r.Kvs {
		var rs Reshard
		if json.Unmarshal(kv.Value, &rs) == nil && rs.ID != "" {
			out[rs.ID], revs[rs.ID] = &rs, kv.ModRevision
		}
	}
	return out, revs, nil
}

// updateReshard changes record id (a new one starts empty) by a
// compare-and-swap on its revision.
func (s *Store) updateReshard(ctx context.Context, id string, change func(*Reshard) error) (*Reshard, error) {
	key := s.key("reshard", id)
	for attempt := 0; attempt < 10; attempt++ {
		r, err := s.get(ctx, key)
		if err != nil {
			return nil, err
		}
		rs, rev := &Reshard{}, int64(0)
		if len(r.Kvs) == 1 {
			if err := json.Unmarshal(r.Kvs[0].Value, rs); err != nil {
				return nil, fmt.Errorf("reshard record %s: %w", key, err)
			}
			rev = r.Kvs[0].ModRevision
		}
		if err := change(rs); err != nil {
			return nil, err
		}
		b, _ := json.Marshal(rs)
		t, err := s.txn(ctx, []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(key), "=", rev)},
			[]clientv3.Op{clientv3.OpPut(key, string(b))}, nil)
		if err != nil {
			return nil, err
		}
		if t.Succeeded {
			return rs, nil
		}
	}
	return nil, fmt.Errorf("reshard record %s kept changing; try again", key)
}

// ReshardPhase records reshard id in phase (a new record with next and
// moves) and tells every live member; with confirm it waits until each has
// applied the phase's marks and fails naming those that did not, else it
// returns once the record is written (the others catch up within
// catchUpEvery).
func (f *Fleet) ReshardPhase(ctx context.Context, id string, next []byte, moves []sharding.Move, phase string, confirm bool) error {
	_, err := f.st.updateReshard(ctx, id, func(r *Reshard) error {
		if r.ID == "" {
			*r = Reshard{ID: id, Next: string(next), Moves: moveRefs(moves), At: time.Now().UTC()}
		}
		if r.published() && (phase == PhaseCopy || phase == PhaseAborted) {
			return fmt.Errorf("reshard %s already switched (config version %d, lookup table pointed: %t): it can only be completed", id, r.Version, r.Pointed)
		}
		if r.directory() && (phase == PhaseCleanup || phase == PhaseDone) {
			r.Pointed = true // the engine cleans up only once the lookup table points at the target
		}
		r.Phase, r.By = phase, f.id
		return nil
	})
	if err != nil {
		return fmt.Errorf("recording reshard %s in the fleet: %w", id, err)
	}
	if confirm {
		return f.Barrier(ctx, opReshardMarks, id)
	}
	go func() {
		if err := f.Barrier(context.Background(), opReshardMarks, id); err != nil {
			f.log.Warn("reshard marks: not every member confirmed; they follow the record in etcd", "reshard", id, "err", err.Error())
		}
	}()
	return nil
}

// ReshardCutover is reshard id's cutover over the fleet: the record goes
// to phase cutover (members that join now hold too), every live member
// holds the moving keys' writes and drains (RESHARD-HOLD), drained runs
// (the engine's last fence and verify), the next config is published as
// a version tagged with the reshard in one transaction with the record,
// and every live member switches to it (RESHARD-SWITCH). If the hold or
// drained fails, or nothing was published, every member that may hold is
// released and the error names the members that failed. Once published,
// switched is true: the placement is in force, an error then names who
// did not acknowledge the switch (they apply the version when they can).
// A record that already has its version (an earlier try published it)
// goes straight to the switch. A directory reshard publishes no version:
// drained points the lookup table, the record is marked Pointed, and if
// that fails undo points it back before any member is released.
func (f *Fleet) ReshardCutover(ctx context.Context, id string, drained, undo func(context.Context) error) (held time.Duration, switched bool, err error) {
	start := time.Now()
	recs, _, err := f.st.reshards(ctx)
	if err != nil {
		return 0, false, fmt.Errorf("cutover: %w", err)
	}
	r := recs[id]
	if r == nil {
		return 0, false, fmt.Errorf("cutover: reshard %s is not recorded in the fleet", id)
	}
	if !r.published() {
		if err := f.holdAndPublish(ctx, r, drained, undo); err != nil && !errors.Is(err, errPublished) {
			return time.Since(start), false, err
		}
	}
	err = f.switchEverywhere(ctx, id)
	return time.Since(start), true, err
}

// errPublished marks a holdAndPublish error after which the version may be
// published: nothing is released then.
var errPublished = errors.New("the next placement may be published")

// holdAndPublish is the cutover up to the published version.
func (f *Fleet) holdAndPublish(ctx context.Context, r *Reshard, drained, undo func(context.Context) error) error {
	doc, err := f.st.Current(ctx)
	if err != nil || doc == nil {
		return fmt.Errorf("cutover: reading the running config version: %v", err)
	}
	if _, err := f.st.updateReshard(ctx, r.ID, func(rr *Reshard) error {
		if rr.published() {
			return fmt.Errorf("%w: version %d, lookup table pointed: %t", errPublished, rr.Version, rr.Pointed)
		}
		rr.Phase = PhaseCutover
		return nil
	}); err != nil {
		return fmt.Errorf("cutover: %w", err)
	}
	o, err := f.barrier(ctx, opReshardHold, r.ID, nil)
	if err != nil {
		return f.release(ctx, r.ID, o.Members, fmt.Errorf("cutover: holding the moving keys' writes: %w", err))
	}
	if err := drained(ctx); err != nil {
		return f.undoAndRelease(ctx, r.ID, o.Members, undo, err)
	}
	var v int64
	if r.directory() {
		err = f.st.publishPointed(ctx, r.ID)
	} else {
		v, err = f.st.publishReshard(ctx, r.ID, r.Next, doc.Version)
	}
	switch {
	case err == nil:
		f.log.Info("reshard published the next placement", "reshard", r.ID, "version", v, "directory", r.directory())
		return nil
	case errors.Is(err, errNotPublished):
		return f.undoAndRelease(ctx, r.ID, o.Members, undo, fmt.Errorf("cutover: %w", err))
	default: // etcd did not answer: the version may be in; never release then
		return fmt.Errorf("cutover: publishing the next placement: %w; every member keeps holding (and refusing) the moving keys until the outcome is read: RESHARD RESUME", err)
	}
}

// undoAndRelease is release after drained ran: undo first (a directory
// reshard's lookup table points back at the sources); if that fails no
// member is released — they keep holding, then refusing, the moving keys
// until RESHARD RESUME switches them.
func (f *Fleet) undoAndRelease(ctx context.Context, id string, held []string, undo func(context.Context) error, cause error) error {
	if undo != nil {
		bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), f.cfg.Load().Cluster.BarrierTimeout.D())
		err := undo(bctx)
		cancel()
		if err != nil {
			return fmt.Errorf("%w; undoing the switch failed, so every member keeps holding (then refusing) the moving keys until RESHARD RESUME: %v", cause, err)
		}
	}
	return f.release(ctx, id, held, cause)
}

// release ends a cutover that published nothing: the record goes back to
// the catch-up first (members that look at it release, newcomers do not
// hold), then every member that may hold is told (the live ones and
// those the hold was sent to, when they come back). cause is returned,
// with the release's own failure if any.
func (f *Fleet) release(ctx context.Context, id string, held []string, cause error) error {
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), f.cfg.Load().Cluster.BarrierTimeout.D())
	defer cancel()
	if _, err := f.st.updateReshard(bctx, id, func(r *Reshard) error {
		if r.published() {
			return fmt.Errorf("%w: version %d, lookup table pointed: %t", errPublished, r.Version, r.Pointed)
		}
		r.Phase = PhaseCopy
		return nil
	}); err != nil {
		return fmt.Errorf("%w; the hold could not be released (members keep refusing the moving keys until the reshard is resumed or aborted): %v", cause, err)
	}
	if _, err := f.barrier(bctx, opReshardRelease, id, held); err != nil {
		return fmt.Errorf("%w; released where it could be (the others release when they read the record): %v", cause, err)
	}
	return fmt.Errorf("%w; the hold was released on every member", cause)
}

// switchEverywhere has every live member run the reshard's version.
func (f *Fleet) switchEverywhere(ctx context.Context, id string) error {
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), f.cfg.Load().Cluster.BarrierTimeout.D()+time.Second)
	defer cancel()
	if err := f.Barrier(bctx, opReshardSwitch, id); err != nil {
		return fmt.Errorf("cutover: the next placement is published, but %w (those members apply it when they reach etcd; meanwhile they hold the moving keys' writes, then refuse them)", err)
	}
	return nil
}

// errNotPublished: the publish transaction was answered and did not apply.
var errNotPublished = errors.New("the next placement was not published")

// publishReshard publishes next as the version after running, tagged with
// reshard id, and records that version in the reshard's record (phase
// clean-up), in one transaction that applies only if the running version
// is still the newest and the record still in its cutover.
func (s *Store) publishReshard(ctx context.Context, id, next string, running int64) (int64, error) {
	vkey, dkey, rkey := s.key("config", "version"), s.key("config", "doc"), s.key("reshard", id)
	r, err := s.get(ctx, rkey)
	if err != nil {
		return 0, err
	}
	if len(r.Kvs) != 1 {
		return 0, fmt.Errorf("%w: reshard %s is not recorded", errNotPublished, id)
	}
	var rs Reshard
	if err := json.Unmarshal(r.Kvs[0].Value, &rs); err != nil || rs.Phase != PhaseCutover {
		return 0, fmt.Errorf("%w: reshard %s is not in its cutover (phase %q)", errNotPublished, id, rs.Phase)
	}
	v := running + 1
	doc := Doc{Version: v, YAML: next, Source: "reshard " + id, Reshard: id, PushedAt: time.Now().UTC()}
	rs.Version, rs.Phase = v, PhaseCleanup
	db, _ := json.Marshal(doc)
	rb, _ := json.Marshal(rs)
	t, err := s.txn(ctx, []clientv3.Cmp{
		clientv3.Compare(clientv3.Value(vkey), "=", strconv.FormatInt(running, 10)),
		clientv3.Compare(clientv3.ModRevision(rkey), "=", r.Kvs[0].ModRevision),
	}, []clientv3.Op{clientv3.OpPut(vkey, strconv.FormatInt(v, 10)), clientv3.OpPut(dkey, string(db)), clientv3.OpPut(rkey, string(rb))}, nil)
	if err != nil {
		return 0, err
	}
	if !t.Succeeded {
		return 0, fmt.Errorf("%w: config version %d is no longer the newest (a config push during the cutover?) or the reshard's record changed", errNotPublished, running)
	}
	return v, nil
}

// publishPointed records that directory reshard id's lookup table points
// its keys at the target (phase clean-up), if the record is still in its
// cutover: the same compare-and-swap as a version's publish, without one.
func (s *Store) publishPointed(ctx context.Context, id string) error {
	_, err := s.updateReshard(ctx, id, func(r *Reshard) error {
		if r.Pointed {
			return nil // an earlier try got through
		}
		if r.ID == "" || r.Phase != PhaseCutover {
			return fmt.Errorf("%w: reshard %s is not in its cutover (phase %q)", errNotPublished, id, r.Phase)
		}
		r.Pointed, r.Phase = true, PhaseCleanup
		return nil
	})
	return err
}

// ReshardStatus describes the newest recorded reshard (ids are start
// times) for SHOW RESHARD on a member that does not run it.
func (f *Fleet) ReshardStatus(ctx context.Context) (id, phase, by string, ok bool, err error) {
	recs, _, err := f.st.reshards(ctx)
	if err != nil || len(recs) == 0 {
		return "", "", "", false, err
	}
	ids := make([]string, 0, len(recs))
	for id := range recs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	r := recs[ids[len(ids)-1]]
	return r.ID, r.Phase, r.By, true, nil
}

// RunningYAML is the text of the config version this member runs (a
// directory reshard's "next" config: it changes no config).
func (f *Fleet) RunningYAML() []byte {
	if d := f.doc.Load(); d != nil {
		return []byte(d.YAML)
	}
	return nil
}

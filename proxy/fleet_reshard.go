package proxy

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/pgrouter/pgrouter/config"
	"github.com/pgrouter/pgrouter/pgwire"
	"github.com/pgrouter/pgrouter/router"
	"github.com/pgrouter/pgrouter/router/sharding"
)

// A reshard's cutover on a fleet member is cut in two (package fleet
// drives it through its barrier): HoldMoves raises the gate and drains,
// and the gate stays up until SwitchMoves puts the reshard's config version
// in force or ReleaseMoves lowers it (the cutover failed before any member
// switched). A member that held and then hears nothing refuses the moving
// keys' statements after a bounded wait instead of releasing them onto a
// placement the other members may have left.

// memberHold is the cutover hold a fleet raised on this member.
type memberHold struct {
	mu    sync.Mutex
	id    string // the reshard; "" = no hold
	gate  *router.Gate
	moves []sharding.Move
	start time.Time
	timer *time.Timer // turns the gate refusing
}

// HoldMoves raises reshard id's cutover hold: writes of the keys that move
// between the running config and next wait (router.Hold), and the
// transactions already holding a source shard's primary end (bounded by
// ctx; on expiry the hold is lowered and the error returned). The hold
// stays up when HoldMoves returns; after refuseAfter without SwitchMoves
// or ReleaseMoves, the statements that would wait are refused (55000)
// until one of them comes. Holding the same reshard again is a no-op.
func (s *Server) HoldMoves(ctx context.Context, id string, next *config.Config, refuseAfter time.Duration) error {
	cur := s.Config()
	if !slices.Equal(cur.ShardNames(), next.ShardNames()) {
		return fmt.Errorf("reshard %s: the next config lists shards %v, this member runs %v", id, next.ShardNames(), cur.ShardNames())
	}
	moves, err := sharding.PlanMoves(cur, next)
	if err != nil {
		return fmt.Errorf("reshard %s: %w", id, err)
	}
	return s.HoldKeys(ctx, id, moves, refuseAfter)
}

// HoldKeys is HoldMoves of the given moves: a directory reshard's
// (sharding.DirectoryMove), whose keys no config tells apart.
func (s *Server) HoldKeys(ctx context.Context, id string, moves []sharding.Move, refuseAfter time.Duration) error {
	h := &s.memberHold
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.id == id {
		return nil
	}
	if h.id != "" {
		return fmt.Errorf("reshard %s: this member still holds for reshard %s", id, h.id)
	}
	cur := s.Config()
	gate, err := s.hold.Raise(moves, cur.ShardIndex)
	if err != nil {
		return fmt.Errorf("reshard %s: %w", id, err)
	}
	start := time.Now()
	if err := s.drainFrom(ctx, gate); err != nil {
		s.lowerGate(gate, start, len(moves), err, "reshard", id)
		return fmt.Errorf("reshard %s: %w", id, err)
	}
	h.id, h.gate, h.moves, h.start = id, gate, moves, start
	s.cutoverM.holdState.Set(1)
	h.timer = time.AfterFunc(refuseAfter, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.gate != gate {
			return // switched or released meanwhile
		}
		s.cutoverM.holdState.Set(2)
		gate.Refuse(pgwire.Error(pgwire.ObjectNotInPrerequisiteState,
			fmt.Sprintf("reshard %s holds the rows this statement touches for its cutover, and neither its switch nor its release reached this pgrouter in time", id),
			"the member running the reshard, or etcd, is out of reach: retry through another pgrouter of the fleet; this one serves these rows again once it sees the reshard's new config version (or the cutover's release) in etcd"))
		s.log.Warn("reshard cutover: no switch or release within the wait; refusing the moving keys' statements until one comes",
			"reshard", id, "duration_ms", refuseAfter.Milliseconds())
	})
	s.log.Info("reshard cutover: holding the moving keys' writes for the fleet", "reshard", id, "moves", len(moves))
	return nil
}

// HeldReshard is the reshard whose hold is up on this member ("" = none).
func (s *Server) HeldReshard() string {
	s.memberHold.mu.Lock()
	defer s.memberHold.mu.Unlock()
	return s.memberHold.id
}

// SwitchMoves puts next — the config version that switched reshard id —
// in force and lowers the hold. Without a hold (a member that started or
// came back after the hold) next is installed the same way: it differs
// from the running config by the reshard's moves only.
func (s *Server) SwitchMoves(id string, next *config.Config) error {
	h := &s.memberHold
	h.mu.Lock()
	defer h.mu.Unlock()
	cur := s.Config()
	moves, err := sharding.PlanMoves(cur, next)
	if err != nil {
		return fmt.Errorf("reshard %s: %w", id, err)
	}
	st, err := buildState(next, s.log, &s.hold)
	if err != nil {
		return fmt.Errorf("reshard %s: %w", id, err)
	}
	if h.id != id {
		return s.switchPlacement(next, st, moves)
	}
	if err := sameMoves(cur, next, h.moves); err != nil {
		return fmt.Errorf("reshard %s: %w", id, err)
	}
	err = s.switchPlacement(next, st, moves)
	if err == nil { // else the gate stays: the version is published, the old placement must not serve its writes
		h.lower(s, nil)
	}
	return err
}

// SwitchKeys is SwitchMoves for a directory reshard whose lookup table
// now points moves' keys at their targets: the sources' rows become
// leftovers, every cached mapping of the tables is dropped (a held write
// looks its key up again when the hold lowers, and finds the target), the
// copies become the targets' rows, and the hold, if up, is lowered. The
// config stays. Without a hold (a member that was not asked to hold, or
// came back later) it drops the cached mappings the same way.
func (s *Server) SwitchKeys(id string, moves []sharding.Move) error {
	h := &s.memberHold
	h.mu.Lock()
	defer h.mu.Unlock()
	s.mark(moves, false, true)
	if err := s.dropMappings(moves); err != nil {
		return fmt.Errorf("reshard %s: %w", id, err)
	}
	s.floorTargets(moves)
	s.mark(moves, true, false)
	if h.id == id {
		h.lower(s, nil)
	}
	return nil
}

// ReleaseMoves lowers reshard id's hold without switching: its cutover
// failed before any member switched. A directory reshard's cached
// mappings of the table are dropped first (dropMappings).
func (s *Server) ReleaseMoves(id string) {
	h := &s.memberHold
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.id != id {
		return
	}
	if err := s.dropMappings(h.moves); err != nil {
		s.log.Warn("reshard cutover released: dropping cached directory mappings failed", "reshard", id, "err", err.Error())
	}
	h.lower(s, fmt.Errorf("released by the fleet"))
}

// dropMappings drops every cached mapping of the directory tables among
// moves (those with Keys). A directory reshard's held write may have
// looked its key up while the lookup table pointed at the target; when the
// hold lowers it looks the key up again, and must find what the lookup
// table says then: the target after a switch, the source after a release
// (the lookup table was pointed back first).
func (s *Server) dropMappings(moves []sharding.Move) error {
	for _, m := range moves {
		if m.Keys == nil {
			continue
		}
		if _, _, err := s.invalidateDirectory(m.Table, nil); err != nil {
			return fmt.Errorf("dropping the cached mappings of %s: %w", m.Table, err)
		}
	}
	return nil
}

// lower ends the hold (under h.mu); err says why when it did not switch.
func (h *memberHold) lower(s *Server, err error) {
	h.timer.Stop()
	s.lowerGate(h.gate, h.start, len(h.moves), err, "reshard", h.id)
	s.cutoverM.holdState.Set(0)
	h.id, h.gate, h.moves, h.timer = "", nil, nil, nil
}

// SetReshardMarks sets this member's marks to exactly those of the fleet's
// reshards: copies (on each move's To shard) and leftovers (on its From
// shard).
func (s *Server) SetReshardMarks(copies, leftovers []sharding.Move) {
	cfg := s.Config()
	marks := map[string]router.ShardSet{}
	add := func(m sharding.Move, shard string) {
		if i := cfg.ShardIndex(shard); i >= 0 {
			marks[router.MarkKey(m.Database, m.Table)] |= router.Only(i)
		}
	}
	for _, m := range copies {
		add(m, m.To)
	}
	for _, m := range leftovers {
		add(m, m.From)
	}
	s.hold.ReplaceMarks(marks)
}

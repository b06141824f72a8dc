package proxy

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pgrouter/pgrouter/config"
	"github.com/pgrouter/pgrouter/pgwire"
	"github.com/pgrouter/pgrouter/router"
	"github.com/pgrouter/pgrouter/router/sharding"
	"github.com/pgrouter/pgrouter/topology"
)

// cutoverPoll is how often Cutover looks whether the transactions it waits
// for have ended (polling keeps the release path — every transaction's —
// free of signalling, as PAUSE does).
const cutoverPoll = 2 * time.Millisecond

// cutoverMetrics are the cutover's Prometheus series.
type cutoverMetrics struct {
	heldSeconds prometheus.Gauge
	heldWrites  prometheus.Counter
	cutovers    *prometheus.CounterVec
	holdState   prometheus.Gauge // a fleet's cutover hold here (fleet_reshard.go)
}

func newCutoverMetrics(reg *prometheus.Registry) *cutoverMetrics {
	m := &cutoverMetrics{
		heldSeconds: prometheus.NewGauge(prometheus.GaugeOpts{Name: "pgrouter_reshard_held_write_seconds",
			Help: "How long the last cutover held the writes of moving keys (from raising the hold to releasing it)."}),
		heldWrites: prometheus.NewCounter(prometheus.CounterOpts{Name: "pgrouter_reshard_held_writes_total",
			Help: "Statements that waited for a cutover."}),
		cutovers: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pgrouter_reshard_cutovers_total",
			Help: "Cutovers by outcome: switched, or failed (the old placement stays)."}, []string{"outcome"}),
		holdState: prometheus.NewGauge(prometheus.GaugeOpts{Name: "pgrouter_reshard_fleet_hold",
			Help: "A fleet reshard's cutover hold on this member: 0 none, 1 holding the moving keys' writes, 2 refusing them (no switch or release came in time)."}),
	}
	reg.MustRegister(m.heldSeconds, m.heldWrites, m.cutovers, m.holdState)
	return m
}

// Cutover switches the running placement to next for moves (from
// sharding.PlanMoves): it holds new writes of moving keys (keyed writes
// whose key a Move covers; multi-shard or unkeyed writes that would touch a
// From shard) while everything else keeps running, waits until the
// transactions already holding a From shard's primary have ended (bounded
// by ctx: on expiry it releases the writes and fails, leaving the old
// placement), calls drained (the engine returns once the targets have every
// change), then installs next — topology, routers and the routers every
// older session holds, so each statement routes under the old placement or
// the new one, never a mix — and releases the held writes, which route
// under next. Rows left on the From shards are marked (see MarkCopies)
// until CleanupDone. next must list the running shards in the same order
// (append spares with an ordinary reload first).
func (i *Instance) Cutover(ctx context.Context, next *config.Config, moves []sharding.Move,
	drained func(context.Context) error) (held time.Duration, err error) {
	return i.Server.Cutover(ctx, next, moves, drained)
}

// MarkCopies tells the routers that the To shards of moves receive copies
// of rows they do not own yet: statements over several shards that include
// such a shard (owning other rows of the table) are refused with 0A000
// until the cutover (after which the rows are theirs) or Unmark.
func (i *Instance) MarkCopies(moves []sharding.Move) { i.Server.mark(moves, true, true) }

// CleanupDone lifts the marks Cutover left on the From shards once the
// engine has deleted the moved rows there.
func (i *Instance) CleanupDone(moves []sharding.Move) { i.Server.mark(moves, false, false) }

// MarkCleanup sets the marks Cutover leaves on the From shards (a
// restarted pgrouter resuming the clean-up of a switched reshard) until
// CleanupDone.
func (i *Instance) MarkCleanup(moves []sharding.Move) { i.Server.mark(moves, false, true) }

// Unmark lifts MarkCopies (after an abort deleted the copies).
func (i *Instance) Unmark(moves []sharding.Move) { i.Server.mark(moves, true, false) }

// mark sets or clears, per move, the To (to=true) or From shard's mark.
func (s *Server) mark(moves []sharding.Move, to, on bool) {
	cfg := s.Config()
	for _, m := range moves {
		name := m.From
		if to {
			name = m.To
		}
		i := cfg.ShardIndex(name)
		if i < 0 {
			continue
		}
		if on {
			s.hold.Mark(m.Database, m.Table, router.Only(i))
		} else {
			s.hold.Unmark(m.Database, m.Table, router.Only(i))
		}
	}
}

// Cutover is Instance.Cutover.
func (s *Server) Cutover(ctx context.Context, next *config.Config, moves []sharding.Move,
	drained func(context.Context) error) (time.Duration, error) {
	cur := s.Config()
	if !slices.Equal(cur.ShardNames(), next.ShardNames()) {
		return 0, fmt.Errorf("cutover: the next config must list the running shards %v in the same order (got %v); add spare shards with a reload first",
			cur.ShardNames(), next.ShardNames())
	}
	if err := sameMoves(cur, next, moves); err != nil {
		return 0, err
	}
	st, err := buildState(next, s.log, &s.hold)
	if err != nil {
		return 0, fmt.Errorf("cutover: %w", err)
	}
	gate, err := s.hold.Raise(moves, cur.ShardIndex)
	if err != nil {
		return 0, fmt.Errorf("cutover: %w", err)
	}
	start := time.Now()
	err = s.cutoverHeld(ctx, gate, next, st, moves, drained)
	return s.lowerGate(gate, start, len(moves), err), err
}

// lowerGate releases a cutover's gate raised at start and accounts for it
// (metrics, log); err is how the cutover ended. It returns the held time.
func (s *Server) lowerGate(gate *router.Gate, start time.Time, moves int, err error, attrs ...any) time.Duration {
	held := time.Since(start)
	gate.Release()
	s.cutoverM.heldSeconds.Set(held.Seconds())
	s.cutoverM.heldWrites.Add(float64(gate.Held()))
	outcome := "switched"
	if err != nil {
		outcome = "failed"
	}
	s.cutoverM.cutovers.WithLabelValues(outcome).Inc()
	s.log.Info("cutover", append([]any{"outcome", outcome, "moves", moves, "held_ms", held.Milliseconds(), "held_writes", gate.Held(), "err", errText(err)}, attrs...)...)
	return held
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// cutoverHeld runs with the gate up: drain, drained, switch.
func (s *Server) cutoverHeld(ctx context.Context, gate *router.Gate, next *config.Config, st *serverState,
	moves []sharding.Move, drained func(context.Context) error) error {
	if err := s.drainFrom(ctx, gate); err != nil {
		return err
	}
	if drained != nil {
		if err := drained(ctx); err != nil {
			return fmt.Errorf("cutover: waiting for the targets: %w", err)
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("cutover: %w", err)
	}
	return s.switchPlacement(next, st, moves)
}

// switchPlacement installs next (built as st) with the gate up: the
// sources' rows become leftovers (marked before the switch, so no
// statement over several shards sees them next to their copies), the
// routers switch, and the copies become the targets' own rows.
func (s *Server) switchPlacement(next *config.Config, st *serverState, moves []sharding.Move) error {
	s.mark(moves, false, true)
	if err := s.swapState(next, st, true); err != nil {
		s.mark(moves, false, false)
		return fmt.Errorf("cutover: %w", err)
	}
	s.floorTargets(moves)
	s.mark(moves, true, false)
	return nil
}

// drainFrom waits until every transaction that held a From shard's primary
// when the gate went up has ended; those sessions pass the gate meanwhile.
// A session seen quiet (between messages, outside any transaction) is not
// waited for: whatever it sends next routes after the gate went up.
func (s *Server) drainFrom(ctx context.Context, gate *router.Gate) error {
	from := gate.FromShards()
	waitFor := map[uint32]uint64{} // session → its txGen at the snapshot
	sessions := map[uint32]*session{}
	for _, ss := range s.Sessions() {
		gen := ss.txGen.Load()
		if !ss.quiet.Load() && router.ShardSet(ss.primaries.Load())&from != 0 {
			waitFor[ss.pid], sessions[ss.pid] = gen, ss
		}
	}
	gate.Exempt(func(id uint32) bool {
		ss, ok := sessions[id]
		return ok && ss.txGen.Load() == waitFor[id]
	})
	for {
		busy := 0
		for id, ss := range sessions {
			if ss.txGen.Load() == waitFor[id] {
				busy++
			}
		}
		if busy == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cutover: %d transaction(s) on the source shards did not end in time: %w", busy, ctx.Err())
		case <-time.After(cutoverPoll):
		}
	}
}

// settle marks the end of a client message: outside any transaction and
// open batch the session is quiet (a backend it keeps — pinned, session
// pooling — is idle then), and what a cutover waited for is over. The
// session's own goroutine calls it.
func (ss *session) settle() {
	if ss.txStatus == pgwire.TxIdle && !ss.openBatch && ss.span == nil {
		ss.txGen.Add(1)
		ss.quiet.Store(true)
	}
}

// notePrimary records that the session bound (or gave back) a backend on
// a shard's primary. Only the session's goroutine calls it.
func (ss *session) notePrimary(b *binding, held bool) {
	if !b.primary || b.shard < 0 || b.shard >= 64 {
		return
	}
	bit := uint64(1) << uint(b.shard)
	cur := ss.primaries.Load()
	if held {
		ss.primaries.Store(cur | bit)
		return
	}
	ss.primaries.Store(cur &^ bit)
}

// swapState installs st (built from cfg) as the running state: topology
// first, then the proxy state; every router of the old state follows its
// successor, so sessions still holding it route as the new one does once
// the placement differs. placement lifts the reload guard.
func (s *Server) swapState(cfg *config.Config, st *serverState, placement bool) error {
	if err := s.topo.Reload(cfg, placement); err != nil {
		return err
	}
	s.dirs.add(st.dirs)
	old := s.state.Swap(st)
	for db, r := range old.routers {
		if nr := st.routers[db]; nr != nil {
			r.Follow(nr)
		}
	}
	retireDirectories(old.dirs) // a reload starts every directory cache empty
	return nil
}

// floorTargets makes reads of the To shards wait for replicas that have
// replayed everything their primary had at the switch (the copied rows):
// until the next primary sample resolves that floor they go to the primary.
// Nothing waits: sessions just skip replicas that are behind.
func (s *Server) floorTargets(moves []sharding.Move) {
	snap := s.topo.Snapshot()
	floors := make([]topology.Floor, len(snap.Shards))
	if old := s.cutFloors.Load(); old != nil {
		copy(floors, *old)
	}
	cfg := s.Config()
	for _, m := range moves {
		if i := cfg.ShardIndex(m.To); i >= 0 && i < len(floors) {
			floors[i] = snap.WriteFloor(i)
		}
	}
	s.cutFloors.Store(&floors)
}

// readFloor is the newer of a session's read-your-writes floor on shard and
// the floor a cutover left there.
func (s *Server) readFloor(shard int, f topology.Floor) topology.Floor {
	if p := s.cutFloors.Load(); p != nil && shard < len(*p) && (*p)[shard].Seq > f.Seq {
		return (*p)[shard]
	}
	return f
}

// directoryMove: m moves keys of a directory-sharded table.
func directoryMove(cfg *config.Config, m sharding.Move) bool {
	d := cfg.Database(m.Database)
	if d == nil {
		return false
	}
	t := d.Table(m.Table)
	return t != nil && strings.EqualFold(t.Function, "directory")
}

// sameMoves checks that moves are what PlanMoves finds between cur and
// next: held writes, drain and marks follow moves, the routers follow next,
// and the two must not disagree.
func sameMoves(cur, next *config.Config, moves []sharding.Move) error {
	want, err := sharding.PlanMoves(cur, next)
	if err != nil {
		return fmt.Errorf("cutover: %w", err)
	}
	key := func(m sharding.Move) string { return m.Database + "\x00" + m.Table + "\x00" + m.From + "\x00" + m.To }
	have := map[string]bool{}
	for _, m := range moves {
		if !directoryMove(cur, m) { // those move by their lookup table, which the config does not show
			have[key(m)] = true
		}
	}
	for _, m := range want {
		if !have[key(m)] {
			return fmt.Errorf("cutover: the moves do not match the next config: table %q of database %q moves from %s to %s, which the given moves leave out",
				m.Table, m.Database, m.From, m.To)
		}
		delete(have, key(m))
	}
	if len(have) > 0 {
		return fmt.Errorf("cutover: %d of the given moves are not changes between the running and the next config", len(have))
	}
	return nil
}

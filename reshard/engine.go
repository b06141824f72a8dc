package reshard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pgrouter/pgrouter/config"
)

// Engine runs at most one reshard at a time inside a serving pgrouter and
// keeps its state in data_dir.
type Engine struct {
	host Host
	log  *slog.Logger
	m    *metrics

	publishes bool // the host installs the next config (a fleet), not the engine's file swap

	mu      sync.Mutex
	st      *state     // the current or last reshard; nil = none
	running *jobHandle // non-nil while a job runs
	table   string     // the table being copied (status)
	lag     int64      // catch-up lag in bytes (status)
}

type jobHandle struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// Status is what SHOW RESHARD prints.
type Status struct {
	ID, Phase, Table, Error string
	Running                 bool
	RowsCopied, LagBytes    int64
	ChunksDone, Chunks      int // copy chunks over all moves (Chunks 0 until the copy planned them)
	HeldSeconds             float64
}

// New returns an engine for host; its metrics go to reg.
func New(host Host, log *slog.Logger, reg prometheus.Registerer) *Engine {
	return &Engine{host: host, log: log, m: newMetrics(reg)}
}

func (e *Engine) dataDir() string { return e.host.Config().DataDir }

// Recover loads the reshard an earlier process left unfinished and places
// the marks its phase needs; RESHARD RESUME continues it. A reshard killed
// during its cutover switched if the config file already names the next
// placement (the file is replaced just before the switch).
func (e *Engine) Recover() error {
	st, err := loadState(e.dataDir())
	if err != nil || st == nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.st = st
	e.m.setPhase(st.Phase)
	if st.Phase.finished() {
		return nil
	}
	p, err := e.planOf(st)
	if err != nil {
		return fmt.Errorf("reshard %s: %w", st.ID, err)
	}
	if st.Phase == PhaseCutover {
		st.Phase = PhaseCatchup
		if e.switched(st, p) {
			st.Phase = PhaseCleanup
		}
		if err := e.saveLocked(); err != nil {
			return err
		}
	}
	if st.Phase == PhaseCleanup {
		err = e.host.MarkCleanup(p.moves)
	} else {
		err = e.host.MarkCopies(p.moves)
	}
	if err != nil {
		return fmt.Errorf("reshard %s: %w", st.ID, err)
	}
	e.log.Info("reshard recovered", "id", st.ID, "phase", st.Phase)
	return nil
}

// planOf plans st again from its saved next config and first placement.
func (e *Engine) planOf(st *state) (*plan, error) {
	data, err := os.ReadFile(nextPath(e.dataDir()))
	if err != nil {
		return nil, err
	}
	next, err := config.Parse(data, nextPath(e.dataDir()))
	if err != nil {
		return nil, err
	}
	e.begin(st.ID, data)
	next.Path = e.host.Config().Path
	if st.Dir != nil {
		moves, err := st.Dir.moves(next)
		if err != nil {
			return nil, err
		}
		return planMoves(next, next, st.ID, moves), nil
	}
	return newPlan(st.Prev.on(next), next, st.ID)
}

// switched reports whether p's placement is in force: the running config
// names it, or for a directory table the lookup table points the keys at
// their target.
func (e *Engine) switched(st *state, p *plan) bool {
	if st.Dir == nil {
		return samePlacement(e.host.Config(), p.next)
	}
	k := st.Dir.anyKey()
	s, err := e.host.ShardOfKey(st.Dir.Database, st.Dir.Table, k)
	return k != "" && err == nil && s == st.Dir.To
}

// Start begins a reshard from the running placement to the one of the
// config file at path, in the background.
func (e *Engine) Start(path string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.freeLocked(); err != nil {
		return err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	next, err := config.Parse(data, path)
	if err != nil {
		return err
	}
	cur := e.host.Config()
	if !slices.Equal(cur.ShardNames(), next.ShardNames()) {
		return fmt.Errorf("the next config must list the running shards %v in the same order (it lists %v): add spare shards (hash: []) with RELOAD FORCE first",
			cur.ShardNames(), next.ShardNames())
	}
	next.Path = cur.Path
	id := time.Now().UTC().Format("20060102150405")
	p, err := newPlan(cur, next, id)
	if err != nil {
		return err
	}
	return e.beginLocked(p, data, &state{ID: id, Phase: PhaseCopy, Started: time.Now().UTC(), Prev: placementOf(cur)}, path)
}

// begin tells the host which reshard runs (Host.Begin).
func (e *Engine) begin(id string, next []byte) {
	e.publishes = e.host.Begin(id, next)
}

// beginLocked persists a new reshard (its next config data) and starts it.
func (e *Engine) beginLocked(p *plan, data []byte, st *state, what string) error {
	e.begin(st.ID, data)
	if err := writeAtomic(nextPath(e.dataDir()), data); err != nil {
		return err
	}
	for _, s := range p.sources {
		st.Sources = append(st.Sources, sourceProg{Slot: s.slot})
	}
	for _, m := range p.moves {
		st.Moves = append(st.Moves, moveProg{Table: m.Table, From: m.From, To: m.To})
	}
	e.st = st
	if err := e.saveLocked(); err != nil {
		return err
	}
	e.log.Info("reshard started", "id", st.ID, "moves", len(p.moves), "next", what)
	e.launchLocked(p)
	return nil
}

// StartDirectory begins moving keys (canonical text) of the
// directory-sharded table of database db to shard to, in the background.
func (e *Engine) StartDirectory(db, table, to string, keys []string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.freeLocked(); err != nil {
		return err
	}
	cur := e.host.Config()
	if cur.Path == "" {
		return errors.New("resharding needs pgrouter to serve a config file")
	}
	if cur.ShardIndex(to) < 0 {
		return fmt.Errorf("no shard %q in the config", to)
	}
	t, err := directoryTable(cur, db, table)
	if err != nil {
		return err
	}
	dm := &dirMove{Database: db, Table: t.Table, To: to, From: map[string][]string{}}
	for _, k := range keys {
		from, err := e.host.ShardOfKey(db, t.Table, k)
		if err != nil {
			return fmt.Errorf("key %q: %w", k, err)
		}
		if from != to {
			dm.From[from] = append(dm.From[from], k)
		}
	}
	id := time.Now().UTC().Format("20060102150405")
	moves, err := dm.moves(cur)
	if err != nil {
		return err
	}
	data, err := e.host.ConfigText()
	if err != nil {
		return err
	}
	return e.beginLocked(planMoves(cur, cur, id, moves), data, &state{ID: id, Phase: PhaseCopy, Started: time.Now().UTC(), Dir: dm},
		fmt.Sprintf("directory table %s: %d key(s) to %s", t.Table, len(keys), to))
}

// Resume continues an unfinished reshard (after an error or a restart).
func (e *Engine) Resume() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.idleLocked(); err != nil {
		return err
	}
	if e.st == nil || e.st.Phase.finished() {
		return errors.New("no unfinished reshard to resume")
	}
	p, err := e.planOf(e.st)
	if err != nil {
		return err
	}
	e.st.Error = ""
	e.log.Info("reshard resumed", "id", e.st.ID, "phase", e.st.Phase)
	e.launchLocked(p)
	return nil
}

// freeLocked: no reshard runs or waits unfinished, so a new one may begin.
func (e *Engine) freeLocked() error {
	if err := e.idleLocked(); err != nil {
		return err
	}
	if e.st != nil && !e.st.Phase.finished() {
		return fmt.Errorf("reshard %s is unfinished (phase %s): RESHARD RESUME or RESHARD ABORT it first", e.st.ID, e.st.Phase)
	}
	return nil
}

func (e *Engine) idleLocked() error {
	if e.running != nil {
		return fmt.Errorf("reshard %s is running (phase %s)", e.st.ID, e.st.Phase)
	}
	return nil
}

func (e *Engine) launchLocked(p *plan) {
	ctx, cancel := context.WithCancel(context.Background())
	h := &jobHandle{cancel: cancel, done: make(chan struct{})}
	e.running = h
	go func() {
		defer close(h.done)
		err := (&job{e: e, p: p}).run(ctx)
		var te *targetError
		if err != nil && errors.As(err, &te) && ctx.Err() == nil && e.phase() != PhaseCleanup {
			err = fmt.Errorf("%w; the reshard was aborted (source unchanged)%s", err, errSuffix(e.abort(context.Background(), p)))
		}
		e.mu.Lock()
		e.running = nil
		if err != nil && ctx.Err() == nil {
			e.st.Error = err.Error()
			e.log.Error("reshard stopped", "id", e.st.ID, "phase", e.st.Phase, "err", err)
			e.saveLocked()
		}
		e.mu.Unlock()
	}()
}

func errSuffix(err error) string {
	if err == nil {
		return ""
	}
	return ", but not completely: " + err.Error() + " (RESHARD ABORT again once the shard is back)"
}

// stopWait bounds how long stop waits for a running job to end.
const stopWait = 30 * time.Second

// stop ends a running job and waits for it (at most stopWait).
func (e *Engine) stop() error {
	e.mu.Lock()
	h := e.running
	e.mu.Unlock()
	if h == nil {
		return nil
	}
	h.cancel()
	select {
	case <-h.done:
		return nil
	case <-time.After(stopWait):
		return fmt.Errorf("the running reshard did not stop within %s", stopWait)
	}
}

// Close stops a running job (pgrouter is shutting down); RESHARD RESUME
// continues it after a restart.
func (e *Engine) Close() { _ = e.stop() }

// Abort stops a reshard that has not switched placement and undoes it:
// the copies on the targets are deleted, slots and publications dropped,
// the marks lifted. The sources are never touched.
func (e *Engine) Abort(ctx context.Context) error {
	if err := e.stop(); err != nil {
		return err
	}
	e.mu.Lock()
	st := e.st
	e.mu.Unlock()
	if st == nil || st.Phase.finished() {
		return errors.New("no unfinished reshard to abort")
	}
	p, err := e.planOf(st)
	if err != nil {
		return err
	}
	if st.Phase == PhaseCleanup || e.switched(st, p) {
		return errors.New("the reshard already switched to the next placement: it can only be completed (RESHARD RESUME)")
	}
	return e.abort(ctx, p)
}

// abort undoes p; on failure the reshard stays unfinished with the error.
func (e *Engine) abort(ctx context.Context, p *plan) error {
	if err := undo(ctx, p); err != nil {
		e.update(func(st *state) { st.Error = "abort incomplete: " + err.Error() })
		return err
	}
	if err := e.host.Unmark(p.moves); err != nil {
		e.update(func(st *state) { st.Error = "abort incomplete (the copies are deleted): " + err.Error() })
		return err
	}
	e.update(func(st *state) { st.Phase = PhaseAborted })
	e.log.Info("reshard aborted", "id", e.st.ID)
	return nil
}

// Status reports the current or last reshard (Phase "" when none).
func (e *Engine) Status() Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.st == nil {
		return Status{}
	}
	s := Status{ID: e.st.ID, Phase: string(e.st.Phase), Error: e.st.Error, Running: e.running != nil,
		HeldSeconds: e.st.HeldSecs, LagBytes: e.lag}
	if e.st.Phase == PhaseCopy {
		s.Table = e.table
	}
	for _, m := range e.st.Moves {
		s.RowsCopied += m.Copied
		s.Chunks += len(m.Done)
		for _, d := range m.Done {
			if d {
				s.ChunksDone++
			}
		}
	}
	return s
}

func (e *Engine) phase() Phase {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.st.Phase
}

// update changes the state and persists it.
func (e *Engine) update(f func(*state)) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	f(e.st)
	return e.saveLocked()
}

func (e *Engine) saveLocked() error {
	e.m.setPhase(e.st.Phase)
	return e.st.save(e.dataDir())
}

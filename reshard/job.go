package reshard

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Catch-up and cutover tuning: a catch-up round (a fence on every source)
// faster than caughtUp means the lag is small enough to hold writes;
// cutoverTimeout bounds the held time (drain, last catch-up, verify);
// cutoverTries is how often a failed cutover is retried after more
// catch-up before the job stops with the error.
const (
	caughtUp       = 500 * time.Millisecond
	fenceTimeout   = time.Minute
	cutoverTimeout = 10 * time.Second
	cutoverTries   = 3
)

// job is one run of the engine over a plan, from the phase the state is in.
type job struct {
	e *Engine
	p *plan

	srcs    []*pgconn.PgConn          // per source: copy, fences, lag, verify
	dsts    map[string]*pgconn.PgConn // per db/To shard: copy, verify
	tables  []*table                  // per move
	streams []*stream                 // per source, during catch-up
	stopCh  context.CancelFunc        // stops the streams
}

func targetKey(db, shard string) string { return db + "\x00" + shard }

func (j *job) run(ctx context.Context) error {
	defer j.close()
	if err := j.connect(ctx); err != nil {
		return err
	}
	if j.e.phase() == PhaseCleanup {
		return j.cleanup(ctx)
	}
	if err := j.e.host.MarkCopies(j.p.moves); err != nil {
		return err
	}
	if j.e.phase() == PhaseCopy {
		if err := j.copyAll(ctx); err != nil {
			return err
		}
		if err := j.e.update(func(st *state) { st.Phase = PhaseCatchup }); err != nil {
			return err
		}
	}
	if err := j.startStreams(ctx); err != nil {
		return err
	}
	for try := 1; ; try++ {
		if err := j.catchUp(ctx); err != nil {
			return err
		}
		err := j.cutover(ctx)
		if err == nil {
			break
		}
		var te *targetError
		if try == cutoverTries || errors.As(err, &te) || errors.Is(err, ErrSwitched) || ctx.Err() != nil {
			return err
		}
		j.e.log.Warn("reshard cutover failed, catching up again", "try", try, "err", err)
	}
	j.stopStreams()
	return j.cleanup(ctx)
}

// connect opens the sources and the targets and reads the moving tables.
func (j *job) connect(ctx context.Context) error {
	cfg := j.p.next
	j.dsts = map[string]*pgconn.PgConn{}
	j.tables = make([]*table, len(j.p.moves))
	for _, s := range j.p.sources {
		c, err := dial(ctx, cfg, s.shard, s.db, false)
		if err != nil {
			return err
		}
		j.srcs = append(j.srcs, c)
		for _, i := range s.moves {
			m := j.p.moves[i]
			if j.tables[i], err = loadTable(ctx, c, m); err != nil {
				return err
			}
			k := targetKey(m.Database, m.To)
			if j.dsts[k] == nil {
				if j.dsts[k], err = dial(ctx, cfg, m.To, m.Database, false); err != nil {
					return &targetError{shard: m.To, err: err}
				}
			}
		}
	}
	return nil
}

func (j *job) close() {
	j.stopStreams()
	ctx := context.Background()
	for _, c := range j.srcs {
		c.Close(ctx)
	}
	for _, c := range j.dsts {
		c.Close(ctx)
	}
}

// copyAll copies every chunk not yet done, source by source.
func (j *job) copyAll(ctx context.Context) error {
	for si, s := range j.p.sources {
		if err := j.copySource(ctx, si, s); err != nil {
			return err
		}
	}
	return nil
}

func (j *job) copySource(ctx context.Context, si int, s source) error {
	src := j.srcs[si]
	var tables []*table
	for _, i := range s.moves {
		tables = append(tables, j.tables[i])
	}
	sp := j.e.st.Sources[si] // only this goroutine writes the state's progress
	snap, repl, err := openSource(ctx, src, func() (*pgconn.PgConn, error) { return dial(ctx, j.p.next, s.shard, s.db, true) }, &sp, tables)
	if err != nil {
		return err
	}
	if repl != nil {
		defer repl.Close(context.WithoutCancel(ctx)) // the snapshot lives until the copy ends
	}
	if err := j.e.update(func(st *state) { st.Sources[si] = sp }); err != nil {
		return err
	}
	if err := beginSnapshot(ctx, src, snap); err != nil {
		return fmt.Errorf("source %s: %w", s.shard, err)
	}
	defer exec(context.WithoutCancel(ctx), src, "COMMIT")
	for _, i := range s.moves {
		if err := j.copyMove(ctx, src, i); err != nil {
			return err
		}
	}
	return nil
}

func (j *job) copyMove(ctx context.Context, src *pgconn.PgConn, i int) error {
	m, t := j.p.moves[i], j.tables[i]
	j.e.mu.Lock()
	j.e.table = t.name
	n := len(j.e.st.Moves[i].Done)
	j.e.mu.Unlock()
	if n == 0 {
		var err error
		if n, err = chunksFor(ctx, src, t); err != nil {
			return err
		}
		if err := j.e.update(func(st *state) { st.Moves[i].Done = make([]bool, n) }); err != nil {
			return err
		}
	}
	dst := j.dsts[targetKey(m.Database, m.To)]
	for c := 0; c < n; c++ {
		j.e.mu.Lock()
		done := j.e.st.Moves[i].Done[c]
		j.e.mu.Unlock()
		if done {
			continue
		}
		rows, err := copyChunk(ctx, src, dst, t, m, c, n)
		if err != nil {
			return fmt.Errorf("copying %s chunk %d/%d from %s to %s: %w", t.name, c+1, n, m.From, m.To, err)
		}
		j.e.m.rowsCopied.Add(float64(rows))
		if err := j.e.update(func(st *state) { st.Moves[i].Done[c] = true; st.Moves[i].Copied += rows }); err != nil {
			return err
		}
	}
	return nil
}

// startStreams opens a replication connection and apply connections per
// source and starts streaming from the slots. Only started streams are
// kept (stopStreams waits for each), so a failure half-way leaks nothing.
func (j *job) startStreams(ctx context.Context) error {
	sctx, cancel := context.WithCancel(ctx)
	j.stopCh = cancel
	for _, s := range j.p.sources {
		st, err := j.openStream(ctx, s)
		if err != nil {
			return err
		}
		st.start(sctx)
		j.streams = append(j.streams, st)
	}
	return nil
}

// openStream connects one source's stream: its targets, then its slot.
func (j *job) openStream(ctx context.Context, s source) (*stream, error) {
	targets := map[string]*pgconn.PgConn{}
	closeAll := func() {
		for _, c := range targets {
			c.Close(context.WithoutCancel(ctx))
		}
	}
	var moves []streamMove
	for _, i := range s.moves {
		m := j.p.moves[i]
		moves = append(moves, streamMove{m: m, t: j.tables[i]})
		if targets[m.To] == nil {
			c, err := dial(ctx, j.p.next, m.To, m.Database, false)
			if err != nil {
				closeAll()
				return nil, &targetError{shard: m.To, err: err}
			}
			targets[m.To] = c
		}
	}
	repl, err := dial(ctx, j.p.next, s.shard, s.db, true)
	if err != nil {
		closeAll()
		return nil, err
	}
	return newStream(s.slot, repl, targets, moves), nil
}

// stopStreams stops the catch-up and closes its connections.
func (j *job) stopStreams() {
	if j.stopCh == nil {
		return
	}
	j.stopCh()
	for _, s := range j.streams {
		<-s.done
		s.repl.Close(context.Background())
		for _, c := range s.targets {
			c.Close(context.Background())
		}
	}
	j.streams, j.stopCh = nil, nil
}

// catchUp fences every source until one round takes less than caughtUp.
func (j *job) catchUp(ctx context.Context) error {
	for {
		start := time.Now()
		if err := j.fenceAll(ctx); err != nil {
			return err
		}
		took := time.Since(start)
		j.e.log.Debug("reshard catch-up round", "duration_ms", took.Milliseconds(), "lag_bytes", j.e.Status().LagBytes)
		if took < caughtUp {
			return nil
		}
	}
}

// fenceAll waits until every stream has applied what its source committed
// before now, and records the lag seen on the way.
func (j *job) fenceAll(ctx context.Context) error {
	fctx, cancel := context.WithTimeout(ctx, fenceTimeout)
	defer cancel()
	var lag int64
	for i, s := range j.streams {
		if err := s.failure(); err != nil {
			return err
		}
		rows, err := query(fctx, j.srcs[i], "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn)::bigint::text", lsnText(s.applied.Load()))
		if err != nil {
			return fmt.Errorf("source %s: %w", j.p.sources[i].shard, err)
		}
		var l int64
		fmt.Sscan(rows[0][0], &l)
		if s.applied.Load() > 0 { // else nothing came yet to measure against
			lag = max(lag, l)
		}
		if err := s.fence(fctx, j.srcs[i], fmt.Sprintf("%s/%d", s.slot, time.Now().UnixNano())); err != nil {
			return err
		}
	}
	j.e.mu.Lock()
	j.e.lag = lag
	j.e.mu.Unlock()
	j.e.m.lagBytes.Set(float64(lag))
	return nil
}

func lsnText(lsn uint64) string { return fmt.Sprintf("%X/%X", uint32(lsn>>32), uint32(lsn)) }

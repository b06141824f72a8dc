package reshard

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgrouter/pgrouter/router/sharding"
)

// fencePrefix marks the logical messages the engine emits on a source to
// learn when the stream has passed a point (see stream.fence).
const fencePrefix = "pgrouter_reshard"

// statusEvery is how often the stream confirms its applied LSN; a batch
// of committed changes is applied once it holds batchChanges changes or is
// batchWait old, and whenever the stream would wait.
const (
	statusEvery  = time.Second
	batchChanges = 2000
	batchWait    = 20 * time.Millisecond
)

// stream is one source's catch-up: it decodes pgoutput from the slot and
// applies the changes of moving keys to their targets.
type stream struct {
	slot    string
	repl    *pgconn.PgConn            // replication connection
	targets map[string]*pgconn.PgConn // To shard → connection
	moves   []streamMove

	rels    map[uint32]*pglogrepl.RelationMessage
	pending []change // of the source transaction being decoded
	inTx    bool

	// Committed source transactions not applied yet: applied together in
	// one target transaction per target, so the catch-up outpaces a source
	// that commits many small transactions.
	batch      []change
	batchEnd   pglogrepl.LSN
	batchSince time.Time

	applied atomic.Uint64 // LSN up to which every change is on the targets

	mu     sync.Mutex
	fences map[string]chan struct{} // fence token → closed when the stream passes it

	done chan struct{} // closed when run returned; err is its error then
	err  error
}

// streamMove is one move out of the stream's source with its table.
type streamMove struct {
	m sharding.Move
	t *table
}

func newStream(slot string, repl *pgconn.PgConn, targets map[string]*pgconn.PgConn, moves []streamMove) *stream {
	return &stream{slot: slot, repl: repl, targets: targets, moves: moves,
		rels: map[uint32]*pglogrepl.RelationMessage{}, fences: map[string]chan struct{}{}, done: make(chan struct{})}
}

// start runs the stream in the background until ctx ends or it fails.
func (s *stream) start(ctx context.Context) {
	go func() {
		s.err = s.run(ctx)
		close(s.done)
	}()
}

// failure is the stream's error once it stopped, else nil.
func (s *stream) failure() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

// run streams from the slot's confirmed position until ctx ends or a
// change cannot be applied.
func (s *stream) run(ctx context.Context) error {
	err := pglogrepl.StartReplication(ctx, s.repl, s.slot, 0, pglogrepl.StartReplicationOptions{
		Mode:       pglogrepl.LogicalReplication,
		PluginArgs: []string{"proto_version '1'", fmt.Sprintf("publication_names '%s'", s.slot), "messages 'true'"},
	})
	if err != nil {
		return fmt.Errorf("starting replication from slot %s: %w", s.slot, err)
	}
	next := time.Now().Add(statusEvery)
	for {
		if !time.Now().Before(next) {
			if err := s.confirm(ctx); err != nil {
				return err
			}
			next = time.Now().Add(statusEvery)
		}
		wait := next
		if s.batchEnd != 0 {
			wait = s.batchSince.Add(batchWait)
		}
		rctx, cancel := context.WithDeadline(ctx, wait)
		msg, err := s.repl.ReceiveMessage(rctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if pgconn.Timeout(err) {
				if err := s.flush(ctx); err != nil {
					return err
				}
				continue
			}
			return fmt.Errorf("replication from slot %s: %w", s.slot, err)
		}
		switch msg := msg.(type) {
		case *pgproto3.CopyData:
			if err := s.copyData(ctx, msg.Data, &next); err != nil {
				return err
			}
		case *pgproto3.ErrorResponse:
			return fmt.Errorf("replication from slot %s: %w", s.slot, pgconn.ErrorResponseToPgError(msg))
		}
	}
}

// confirm tells the source what the targets have: the slot keeps the WAL
// after it.
func (s *stream) confirm(ctx context.Context) error {
	lsn := pglogrepl.LSN(s.applied.Load())
	if err := pglogrepl.SendStandbyStatusUpdate(ctx, s.repl, pglogrepl.StandbyStatusUpdate{WALWritePosition: lsn}); err != nil {
		return fmt.Errorf("replication from slot %s: %w", s.slot, err)
	}
	return nil
}

func (s *stream) copyData(ctx context.Context, data []byte, next *time.Time) error {
	if len(data) == 0 {
		return nil
	}
	switch data[0] {
	case pglogrepl.PrimaryKeepaliveMessageByteID:
		k, err := pglogrepl.ParsePrimaryKeepaliveMessage(data[1:])
		if err != nil {
			return err
		}
		if err := s.flush(ctx); err != nil {
			return err
		}
		if !s.inTx && uint64(k.ServerWALEnd) > s.applied.Load() {
			s.applied.Store(uint64(k.ServerWALEnd)) // everything sent so far is applied
		}
		if k.ReplyRequested {
			*next = time.Time{}
		}
	case pglogrepl.XLogDataByteID:
		x, err := pglogrepl.ParseXLogData(data[1:])
		if err != nil {
			return err
		}
		return s.decoded(ctx, x.WALData)
	}
	return nil
}

// decoded handles one pgoutput message.
func (s *stream) decoded(ctx context.Context, data []byte) error {
	msg, err := pglogrepl.Parse(data)
	if err != nil {
		return fmt.Errorf("decoding pgoutput from slot %s: %w", s.slot, err)
	}
	switch m := msg.(type) {
	case *pglogrepl.RelationMessage:
		s.rels[m.RelationID] = m
	case *pglogrepl.BeginMessage:
		s.inTx, s.pending = true, s.pending[:0]
	case *pglogrepl.CommitMessage:
		if s.batchEnd == 0 {
			s.batchSince = time.Now()
		}
		s.batch = append(s.batch, s.pending...)
		s.batchEnd = m.TransactionEndLSN
		s.inTx, s.pending = false, s.pending[:0]
		if len(s.batch) >= batchChanges || time.Since(s.batchSince) >= batchWait {
			return s.flush(ctx)
		}
	case *pglogrepl.InsertMessage:
		return s.rowChange(m.RelationID, nil, m.Tuple)
	case *pglogrepl.UpdateMessage:
		return s.rowChange(m.RelationID, m.OldTuple, m.NewTuple)
	case *pglogrepl.DeleteMessage:
		return s.rowChange(m.RelationID, m.OldTuple, nil)
	case *pglogrepl.TruncateMessage:
		return errors.New("a moving table was truncated on its source shard during the reshard: its rows cannot be followed")
	case *pglogrepl.LogicalDecodingMessage:
		if m.Prefix == fencePrefix {
			if err := s.flush(ctx); err != nil {
				return err
			}
			if !s.inTx && uint64(m.LSN) > s.applied.Load() {
				s.applied.Store(uint64(m.LSN))
			}
			s.passed(string(m.Content))
		}
	}
	return nil
}

// flush applies the batch of committed changes.
func (s *stream) flush(ctx context.Context) error {
	if s.batchEnd == 0 {
		return nil
	}
	if err := applyTx(ctx, s.targets, s.batch); err != nil {
		return err
	}
	s.applied.Store(uint64(s.batchEnd))
	s.batch, s.batchEnd = s.batch[:0], 0
	return nil
}

// rowChange queues what one row change means for the targets: the old row
// leaves the target its key moved to, the new row is set on the target its
// key moves to (old is nil when the key did not change).
func (s *stream) rowChange(relID uint32, old, row *pglogrepl.TupleData) error {
	rel := s.rels[relID]
	if rel == nil {
		return fmt.Errorf("replication from slot %s: change of unknown relation %d", s.slot, relID)
	}
	for _, sm := range s.moves {
		if sm.t.oid != relID {
			continue
		}
		gone := old
		if gone == nil && row == nil {
			continue
		}
		if gone != nil {
			k, err := s.key(sm, rel, gone)
			if err != nil {
				return err
			}
			if sm.m.Has(k) {
				c, err := sm.t.remove(sm.m.To, rel, gone)
				if err != nil {
					return err
				}
				s.pending = append(s.pending, c)
			}
		}
		if row != nil {
			k, err := s.key(sm, rel, row)
			if err != nil {
				return err
			}
			if sm.m.Has(k) {
				s.pending = append(s.pending, sm.t.upsert(sm.m.To, rel, row))
			}
		}
	}
	return nil
}

// key is the shard key a tuple carries.
func (s *stream) key(sm streamMove, rel *pglogrepl.RelationMessage, row *pglogrepl.TupleData) (sharding.Key, error) {
	name := sm.t.cols[sm.t.key]
	for i, c := range rel.Columns {
		if c.Name != name || i >= len(row.Columns) {
			continue
		}
		switch v := row.Columns[i]; v.DataType {
		case pglogrepl.TupleDataTypeNull:
			return sharding.Key{Null: true}, nil
		case pglogrepl.TupleDataTypeText:
			return sharding.KeyFromText(sm.m.Type, v.Data)
		}
		break
	}
	return sharding.Key{}, fmt.Errorf("table %s: a change carries no value of the shard key %s (it must be in the primary key)", sm.t.name, name)
}

// fence emits a logical message on the source (over src) and waits until
// the stream has applied everything committed before it.
func (s *stream) fence(ctx context.Context, src *pgconn.PgConn, token string) error {
	ch := make(chan struct{})
	s.mu.Lock()
	s.fences[token] = ch
	s.mu.Unlock()
	if _, err := query(ctx, src, "SELECT pg_logical_emit_message(false, $1, $2)::text", fencePrefix, token); err != nil {
		return fmt.Errorf("fence on slot %s: %w", s.slot, err)
	}
	select {
	case <-ch:
		return nil
	case <-s.done:
		return s.err
	case <-ctx.Done():
		return fmt.Errorf("catch-up of slot %s did not reach the fence: %w", s.slot, ctx.Err())
	}
}

func (s *stream) passed(token string) {
	s.mu.Lock()
	if ch := s.fences[token]; ch != nil {
		close(ch)
		delete(s.fences, token)
	}
	s.mu.Unlock()
}

package reshard

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// deleteBatch is how many rows one clean-up statement deletes, so no
// statement holds many row locks or a long transaction on a serving shard.
const deleteBatch = 5000

// cleanup runs after the switch: the sources' slots and publications are
// dropped and the moved rows deleted there in batches; then the marks go.
// It starts by marking the sources' leftovers, which in a fleet also
// confirms that every member runs the next placement: none may read the
// moved rows on a source any more before they are deleted there.
func (j *job) cleanup(ctx context.Context) error {
	if err := j.e.host.MarkCleanup(j.p.moves); err != nil {
		return fmt.Errorf("before deleting the moved rows on the sources: %w", err)
	}
	for si, s := range j.p.sources {
		if err := dropSource(ctx, j.srcs[si], s.slot); err != nil {
			return err
		}
		for _, i := range s.moves {
			if err := deleteMoving(ctx, j.srcs[si], j.tables[i].name, j.p.moves[i].Where); err != nil {
				return fmt.Errorf("cleaning up %s on %s: %w", j.tables[i].name, s.shard, err)
			}
		}
	}
	if err := j.e.host.CleanupDone(j.p.moves); err != nil {
		return err
	}
	j.e.log.Info("reshard done", "id", j.e.st.ID)
	return j.e.update(func(st *state) { st.Phase = PhaseDone })
}

// undo is an abort's work: slots and publications dropped on the sources,
// the copies deleted on the targets; the sources' rows stay.
func undo(ctx context.Context, p *plan) error {
	for _, s := range p.sources {
		src, err := dial(ctx, p.next, s.shard, s.db, false)
		if err != nil {
			return err
		}
		err = dropSource(ctx, src, s.slot)
		src.Close(context.WithoutCancel(ctx))
		if err != nil {
			return err
		}
	}
	for _, m := range p.moves {
		dst, err := dial(ctx, p.next, m.To, m.Database, false)
		if err != nil {
			return fmt.Errorf("deleting the copies on %s: %w", m.To, err)
		}
		err = deleteMoving(ctx, dst, m.Table, m.Where)
		dst.Close(context.WithoutCancel(ctx))
		if err != nil {
			return fmt.Errorf("deleting the copies on %s: %w", m.To, err)
		}
	}
	return nil
}

// dropSource drops a source's slot (waiting for a stopped stream's
// walsender to let go of it) and publication.
func dropSource(ctx context.Context, c *pgconn.PgConn, slot string) error {
	deadline := time.Now().Add(slotDropWait)
	for {
		err := dropSlot(ctx, c, slot)
		if err == nil || !strings.Contains(err.Error(), "is active") || time.Now().After(deadline) {
			if err != nil {
				return err
			}
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := exec(ctx, c, "DROP PUBLICATION IF EXISTS "+quoteIdent(slot)); err != nil {
		return fmt.Errorf("dropping publication %s: %w", slot, err)
	}
	return nil
}

// deleteMoving deletes the rows of table matching where, in batches.
func deleteMoving(ctx context.Context, c *pgconn.PgConn, table, where string) error {
	sql := fmt.Sprintf("DELETE FROM %s WHERE ctid = ANY(ARRAY(SELECT ctid FROM %s WHERE %s LIMIT %d))", table, table, where, deleteBatch)
	for {
		tag, err := c.Exec(ctx, sql).ReadAll()
		if err != nil {
			return err
		}
		if len(tag) == 0 || tag[0].CommandTag.RowsAffected() == 0 {
			return nil
		}
	}
}

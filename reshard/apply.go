package reshard

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
)

// change is one statement for a target, from one decoded row change. Every
// change sets a whole row (upsert) or removes it, so applying a change
// twice, or one the copied snapshot already holds, ends in the same row:
// that is what lets catch-up start at the slot's LSN under any copy.
type change struct {
	to   string
	sql  string
	args [][]byte
}

// upsert builds the change setting row (its columns by the relation's
// column names) on target to.
func (t *table) upsert(to string, rel *pglogrepl.RelationMessage, row *pglogrepl.TupleData) change {
	var cols, sets []string
	var args [][]byte
	for i, c := range row.Columns {
		if c.DataType == pglogrepl.TupleDataTypeToast {
			continue // unchanged TOASTed value: keep the target's
		}
		name := rel.Columns[i].Name
		cols = append(cols, quoteIdent(name))
		if !t.isPK(name) {
			sets = append(sets, quoteIdent(name)+" = EXCLUDED."+quoteIdent(name))
		}
		args = append(args, value(c))
	}
	ph := make([]string, len(args))
	for i := range ph {
		ph[i] = fmt.Sprintf("$%d", i+1)
	}
	conflict := "DO NOTHING"
	if len(sets) > 0 {
		conflict = "DO UPDATE SET " + strings.Join(sets, ", ")
	}
	sql := fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s) ON CONFLICT (%s) %s",
		t.name, strings.Join(cols, ", "), strings.Join(ph, ", "), t.pkList(), conflict)
	return change{to: to, sql: sql, args: args}
}

// remove builds the change deleting the row whose primary key row holds.
func (t *table) remove(to string, rel *pglogrepl.RelationMessage, row *pglogrepl.TupleData) (change, error) {
	var conds []string
	var args [][]byte
	for i, c := range row.Columns {
		name := rel.Columns[i].Name
		if !t.isPK(name) {
			continue
		}
		if c.DataType != pglogrepl.TupleDataTypeText {
			return change{}, fmt.Errorf("table %s: the change carries no primary key value for %s (REPLICA IDENTITY must be DEFAULT or FULL)", t.name, name)
		}
		args = append(args, c.Data)
		conds = append(conds, fmt.Sprintf("%s = $%d", quoteIdent(name), len(args)))
	}
	if len(args) != len(t.pk) {
		return change{}, fmt.Errorf("table %s: the change carries %d of %d primary key columns", t.name, len(args), len(t.pk))
	}
	return change{to: to, sql: "DELETE FROM " + t.name + " WHERE " + strings.Join(conds, " AND "), args: args}, nil
}

func (t *table) isPK(name string) bool {
	for _, i := range t.pk {
		if t.cols[i] == name {
			return true
		}
	}
	return false
}

func value(c *pglogrepl.TupleDataColumn) []byte {
	if c.DataType == pglogrepl.TupleDataTypeNull {
		return nil
	}
	if c.Data == nil {
		return []byte{}
	}
	return c.Data
}

// targetError is a failure of a target shard: the catch-up cannot go on,
// and the reshard aborts.
type targetError struct {
	shard string
	err   error
}

func (e *targetError) Error() string {
	return fmt.Sprintf("target shard %s failed: %v", e.shard, e.err)
}

func (e *targetError) Unwrap() error { return e.err }

// applyTx applies the changes of whole source transactions: one
// transaction per target, in the source's order.
func applyTx(ctx context.Context, targets map[string]*pgconn.PgConn, changes []change) error {
	byTarget := map[string][]change{}
	var order []string
	for _, c := range changes {
		if _, ok := byTarget[c.to]; !ok {
			order = append(order, c.to)
		}
		byTarget[c.to] = append(byTarget[c.to], c)
	}
	for _, to := range order {
		if err := applyOn(ctx, targets[to], byTarget[to]); err != nil {
			return &targetError{shard: to, err: err}
		}
	}
	return nil
}

func applyOn(ctx context.Context, c *pgconn.PgConn, changes []change) error {
	b := &pgconn.Batch{}
	b.ExecParams("BEGIN", nil, nil, nil, nil)
	for _, ch := range changes {
		b.ExecParams(ch.sql, ch.args, nil, nil, nil)
	}
	b.ExecParams("COMMIT", nil, nil, nil, nil)
	_, err := c.ExecBatch(ctx, b).ReadAll()
	if err != nil && !c.IsClosed() {
		c.Exec(context.WithoutCancel(ctx), "ROLLBACK").ReadAll()
	}
	return err
}

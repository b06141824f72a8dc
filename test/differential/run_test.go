package differential

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// result is what a query returned, as raw wire values: columns (name, type,
// typmod, format) and rows (each cell's bytes; NULL distinct from empty).
type result struct {
	cols []string
	rows []string
}

// modes are the ways a client can run a query; each is run against the
// single database and through pgrouter.
// ncols is the query's column count (for per-column format codes).
var modes = []struct {
	name string
	run  func(ctx context.Context, c *pgx.Conn, q query, ncols int) (*result, error)
}{
	{"simple", func(ctx context.Context, c *pgx.Conn, q query, _ int) (*result, error) {
		return runSimple(ctx, c, q)
	}},
	{"extended-text", func(ctx context.Context, c *pgx.Conn, q query, _ int) (*result, error) {
		return runExtended(ctx, c, q, nil)
	}},
	{"extended-binary", func(ctx context.Context, c *pgx.Conn, q query, _ int) (*result, error) {
		return runExtended(ctx, c, q, []int16{1})
	}},
	{"prepared-binary", func(ctx context.Context, c *pgx.Conn, q query, _ int) (*result, error) {
		return runPrepared(ctx, c, q)
	}},
	// One format code per column, alternating binary and text, as pgx's
	// cache modes send them: hidden merge columns must still come back.
	{"extended-mixed", func(ctx context.Context, c *pgx.Conn, q query, ncols int) (*result, error) {
		formats := make([]int16, ncols)
		for i := range formats {
			formats[i] = int16(1 - i%2)
		}
		return runExtended(ctx, c, q, formats)
	}},
}

// runSimple uses the simple protocol (pgx interpolates parameters as
// literals): text results.
func runSimple(ctx context.Context, c *pgx.Conn, q query) (*result, error) {
	args := []any{pgx.QueryExecModeSimpleProtocol}
	for _, p := range q.params {
		if p == nil {
			args = append(args, nil)
		} else {
			args = append(args, *p)
		}
	}
	rows, err := c.Query(ctx, q.sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	res := &result{cols: describe(rows.FieldDescriptions())}
	for rows.Next() {
		res.rows = append(res.rows, renderRow(rows.RawValues()))
	}
	return res, rows.Err()
}

func textParams(q query) [][]byte {
	var out [][]byte
	for _, p := range q.params {
		if p == nil {
			out = append(out, nil)
		} else {
			out = append(out, []byte(*p))
		}
	}
	return out
}

// runExtended uses the unnamed statement (Parse/Bind/Describe/Execute/Sync)
// with text parameters and the given result formats.
func runExtended(ctx context.Context, c *pgx.Conn, q query, formats []int16) (*result, error) {
	r := c.PgConn().ExecParams(ctx, q.sql, textParams(q), nil, nil, formats).Read()
	if r.Err != nil {
		return nil, r.Err
	}
	return fromResult(r), nil
}

// runPrepared prepares a named statement (Parse/Describe/Sync), runs it
// with binary results, and checks the statement's described columns too.
func runPrepared(ctx context.Context, c *pgx.Conn, q query) (*result, error) {
	const name = "diff_stmt"
	sd, err := c.PgConn().Prepare(ctx, name, q.sql, nil)
	if err != nil {
		return nil, err
	}
	defer c.PgConn().Deallocate(ctx, name)
	r := c.PgConn().ExecPrepared(ctx, name, textParams(q), nil, []int16{1}).Read()
	if r.Err != nil {
		return nil, r.Err
	}
	res := fromResult(r)
	// The statement Describe (format codes still unknown: all 0).
	res.cols = append(res.cols, "describe: "+strings.Join(describe(sd.Fields), ", "))
	return res, nil
}

func fromResult(r *pgconn.Result) *result {
	res := &result{cols: describe(r.FieldDescriptions)}
	for _, row := range r.Rows {
		res.rows = append(res.rows, renderRow(row))
	}
	return res
}

func describe(fds []pgconn.FieldDescription) []string {
	var out []string
	for _, f := range fds {
		out = append(out, fmt.Sprintf("%s:%d(%d)/%d", f.Name, f.DataTypeOID, f.TypeModifier, f.Format))
	}
	return out
}

// renderRow quotes each cell's bytes, so NULL, the empty string and binary values are all
// distinct and comparable as strings.
func renderRow(cells [][]byte) string {
	parts := make([]string, len(cells))
	for i, c := range cells {
		if c == nil {
			parts[i] = "NULL"
		} else {
			parts[i] = fmt.Sprintf("%q", c)
		}
	}
	return strings.Join(parts, " | ")
}

// diff explains how got differs from want; "" when they are equal (as
// lists when ordered, else as multisets).
func diff(want, got *result, ordered bool) string {
	if !slices.Equal(want.cols, got.cols) {
		return fmt.Sprintf("columns differ:\n want %v\n  got %v", want.cols, got.cols)
	}
	w, g := want.rows, got.rows
	if !ordered {
		w, g = slices.Clone(w), slices.Clone(g)
		slices.Sort(w)
		slices.Sort(g)
	}
	if slices.Equal(w, g) {
		return ""
	}
	for i := range min(len(w), len(g)) {
		if w[i] != g[i] {
			return fmt.Sprintf("%d rows, want %d; first difference at row %d:\n want %s\n  got %s", len(g), len(w), i, w[i], g[i])
		}
	}
	return fmt.Sprintf("%d rows, want %d", len(g), len(w))
}

func pgError(err error) *pgconn.PgError {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe
	}
	return nil
}

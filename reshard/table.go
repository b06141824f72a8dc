package reshard

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgrouter/pgrouter/router/sharding"
)

// table is what the engine knows of one moving table, read from a source.
type table struct {
	name string   // as written in the config (Postgres folds it)
	oid  uint32   // on the source: matches pgoutput's relation id
	cols []string // column names in attnum order (no dropped or generated ones)
	pk   []int    // primary key columns (indexes into cols)
	key  int      // the shard key column (index into cols)
}

// loadTable reads m's table on the source c. It needs a primary key: the
// catch-up finds rows by it (the table's REPLICA IDENTITY DEFAULT).
func loadTable(ctx context.Context, c *pgconn.PgConn, m sharding.Move) (*table, error) {
	const q = `SELECT c.oid::text, a.attname, coalesce(a.attnum = ANY(i.indkey), false)::text
FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
WHERE c.oid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
ORDER BY a.attnum`
	rows, err := query(ctx, c, q, m.Table)
	if err != nil {
		return nil, fmt.Errorf("table %s: %w", m.Table, err)
	}
	t := &table{name: m.Table, key: -1}
	for i, r := range rows {
		var oid uint32
		fmt.Sscan(r[0], &oid)
		t.oid = oid
		t.cols = append(t.cols, r[1])
		if r[2] == "true" {
			t.pk = append(t.pk, i)
		}
		if strings.EqualFold(r[1], m.Column) {
			t.key = i
		}
	}
	switch {
	case len(t.cols) == 0:
		return nil, fmt.Errorf("table %s not found on shard %s", m.Table, m.From)
	case len(t.pk) == 0:
		return nil, fmt.Errorf("table %s has no primary key: resharding finds rows by it (REPLICA IDENTITY DEFAULT)", m.Table)
	case t.key < 0:
		return nil, fmt.Errorf("table %s has no column %s", m.Table, m.Column)
	}
	return t, nil
}

// colList is the quoted column list "a", "b".
func (t *table) colList() string { return quoteAll(t.cols, "") }

// pkList is the quoted primary key columns.
func (t *table) pkList() string {
	names := make([]string, len(t.pk))
	for i, c := range t.pk {
		names[i] = t.cols[c]
	}
	return quoteAll(names, "")
}

func quoteAll(names []string, prefix string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = prefix + quoteIdent(n)
	}
	return strings.Join(q, ", ")
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// bucketOf is the SQL bucket (0..n-1) of a row by its shard key: the copy's
// chunks and the verify's key ranges.
func bucketOf(m sharding.Move, n int) string {
	return fmt.Sprintf("((hashtextextended(%s::text, 0) & 2147483647) %% %d)", quoteIdent(strings.ToLower(m.Column)), n)
}

// query runs sql with text parameters and returns every row as text (NULL
// as "").
func query(ctx context.Context, c *pgconn.PgConn, sql string, args ...string) ([][]string, error) {
	params := make([][]byte, len(args))
	for i, a := range args {
		params[i] = []byte(a)
	}
	res := c.ExecParams(ctx, sql, params, nil, nil, nil).Read()
	if res.Err != nil {
		return nil, res.Err
	}
	out := make([][]string, len(res.Rows))
	for i, r := range res.Rows {
		out[i] = make([]string, len(r))
		for j, v := range r {
			out[i][j] = string(v)
		}
	}
	return out, nil
}

// exec runs one or more statements without parameters.
func exec(ctx context.Context, c *pgconn.PgConn, sql string) error {
	_, err := c.Exec(ctx, sql).ReadAll()
	return err
}

package router

import (
	"fmt"
	"strings"
	"sync"
)

// An INSERT into a sharded table without a column list sets the columns in
// the table's order, which only the catalog knows. The router has no I/O:
// routing such an INSERT fails with *NeedColumnsError until the caller has
// read the order (Query) and given it to SetColumns; plans are rebuilt then.
// The caller forgets the orders after a schema change (ForgetColumns).

// NeedColumnsError says which table's column order routing needs.
type NeedColumnsError struct {
	Table  string // the sharded table as configured (SetColumns' key)
	schema string
	name   string
	column string
}

func (e *NeedColumnsError) Error() string {
	return fmt.Sprintf("INSERT into sharded table %q needs its column order", e.Table)
}

// Query is the catalog query that returns the table's columns in order
// (one row each), as the backend resolves the table name; no rows (never
// an error: it may run inside the client's transaction) when there is no
// such table.
func (e *NeedColumnsError) Query() string {
	rel := quoteIdent(e.name)
	if e.schema != "" {
		rel = quoteIdent(e.schema) + "." + rel
	}
	return "SELECT attname FROM pg_catalog.pg_attribute WHERE attrelid = pg_catalog.to_regclass('" +
		strings.ReplaceAll(rel, "'", "''") + "') AND attnum > 0 AND NOT attisdropped ORDER BY attnum"
}

// Refusal is the error for the client when the order cannot be read.
func (e *NeedColumnsError) Refusal() error {
	return pgError(codeFeatureNotSupported,
		fmt.Sprintf("INSERT into sharded table %q must name its columns so pgrouter can find shard key %q", e.Table, e.column),
		"list the columns: INSERT INTO t (col, …) VALUES …")
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// columnOrders holds the column orders read so far, by table.
type columnOrders struct {
	mu sync.RWMutex
	m  map[string][]string
}

// SetColumns records table's columns in order and drops the plans that
// were built without them.
func (r *Router) SetColumns(table string, cols []string) {
	if nr := r.moved(); nr != nil {
		nr.SetColumns(table, cols)
	}
	r.cols.mu.Lock()
	if r.cols.m == nil {
		r.cols.m = map[string][]string{}
	}
	r.cols.m[table] = cols
	r.cols.mu.Unlock()
	r.plans.Purge()
	r.rawOnly.Purge()
}

// ForgetColumns drops every column order and the plans built with them
// (a schema change may have reordered columns).
func (r *Router) ForgetColumns() {
	if nr := r.moved(); nr != nil {
		nr.ForgetColumns()
	}
	r.cols.mu.Lock()
	n := len(r.cols.m)
	clear(r.cols.m)
	r.cols.mu.Unlock()
	if n > 0 {
		r.plans.Purge()
		r.rawOnly.Purge()
	}
}

// columnPos is the position of t's shard key among its columns; ok is
// false when the order is not known yet.
func (r *Router) columnPos(t *shardedTable) (pos int, ok bool) {
	r.cols.mu.RLock()
	cols, ok := r.cols.m[t.display]
	r.cols.mu.RUnlock()
	if !ok {
		return -1, false
	}
	for i, c := range cols {
		if c == t.column {
			return i, true
		}
	}
	return -1, true
}

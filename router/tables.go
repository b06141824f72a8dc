package router

import (
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"
)

// shardedTableFor matches a relation against the sharded tables. The parser
// has already folded unquoted names to lower case; configured names are
// folded too. An unqualified configured name matches any schema.
func (r *Router) shardedTableFor(rv *pg.RangeVar) *shardedTable {
	for _, t := range r.tables {
		if t.name == rv.Relname && (t.schema == "" || rv.Schemaname == "" || t.schema == rv.Schemaname) {
			return t
		}
	}
	return nil
}

// relKind places a relation that is not sharded.
func (r *Router) relKind(rv *pg.RangeVar) (relKindT, int) {
	for _, t := range r.refs {
		if t.name == rv.Relname && (t.schema == "" || rv.Schemaname == "" || t.schema == rv.Schemaname) {
			return relReference, 0
		}
	}
	switch {
	case rv.Schemaname == "pg_catalog" || rv.Schemaname == "information_schema":
		return relCatalog, 0
	case rv.Schemaname == "" && strings.HasPrefix(rv.Relname, "pg_"):
		return relCatalog, 0
	}
	return r.unlisted, r.unlistedTo
}

func relName(rv *pg.RangeVar) string {
	if rv.Schemaname != "" {
		return rv.Schemaname + "." + rv.Relname
	}
	return rv.Relname
}

package router

import (
	"fmt"

	"github.com/pgrouter/pgrouter/pgwire"

	"github.com/jackc/pgx/v5/pgconn"
)

// SQLSTATEs the router reports.
const (
	codeFeatureNotSupported = pgwire.FeatureNotSupported
	codeNotInPrerequisite   = pgwire.ObjectNotInPrerequisiteState
	codeInvalidParameter    = pgwire.InvalidParameterValue
	codeUndefinedTable      = pgwire.UndefinedTable
	codeUndefinedObject     = pgwire.UndefinedObject
)

func pgError(code, msg, hint string) *pgconn.PgError {
	return &pgconn.PgError{Severity: "ERROR", Code: code, Message: msg, Hint: hint}
}

func multiShardError(rt *Route) *pgconn.PgError {
	if rt.Copy {
		return pgError(codeFeatureNotSupported,
			fmt.Sprintf("COPY FROM STDIN into table %q runs on %d shards; pgrouter cannot run it in this transaction", rt.Table, rt.Shards.Len()),
			"run the COPY on its own (autocommit) or in a transaction of a session that is not pinned (pool mode transaction), or route it to one shard with /* pgrouter: shard=NAME */")
	}
	if rt.Table == "" {
		return pgError(codeFeatureNotSupported,
			fmt.Sprintf("statement must run on %d shards; multi-shard execution is not supported here", rt.Shards.Len()),
			"route it to one shard with /* pgrouter: shard=NAME */ or SET pgrouter.shard")
	}
	if rt.Column == "" {
		return pgError(codeFeatureNotSupported,
			fmt.Sprintf("statement on table %q must run on %d shards; multi-shard execution is not supported here", rt.Table, rt.Shards.Len()),
			"route it to one shard with /* pgrouter: shard=NAME */ or SET pgrouter.shard")
	}
	return pgError(codeFeatureNotSupported,
		fmt.Sprintf("query on sharded table %q does not restrict shard key %q to one shard", rt.Table, rt.Column),
		fmt.Sprintf("add WHERE %s = <value> (or IN/ANY on one shard), or a /* pgrouter: shard=NAME */ hint", rt.Column))
}

package directory

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/pgrouter/pgrouter/pgwire"

	"github.com/jackc/pgx/v5/pgconn"
)

func pgErr(code, msg, hint string) *pgconn.PgError {
	return &pgconn.PgError{Severity: "ERROR", Code: code, Message: msg, Hint: hint}
}

// errUnknownKey: the lookup found no mapping and auto_assign is off.
func (t *Table) errUnknownKey() *pgconn.PgError {
	return pgErr(pgwire.InvalidParameterValue,
		fmt.Sprintf("no directory mapping for this shard key of table %q (key column %q)", t.name, t.column),
		fmt.Sprintf("add the key's mapping to the lookup table on directory node %s (what %q reads), then retry; or set auto_assign: hash for table %q",
			t.node, t.query, t.name))
}

func (t *Table) errUnknownShard(shard string) *pgconn.PgError {
	return pgErr(pgwire.InvalidParameterValue,
		fmt.Sprintf("the directory of table %q maps a key to unknown shard %q", t.name, shard),
		"shards are: "+strings.Join(t.shards, ", ")+"; fix the lookup table")
}

func (t *Table) errAmbiguous(n int) *pgconn.PgError {
	return pgErr("21000",
		fmt.Sprintf("the directory of table %q returned %d rows for one shard key", t.name, n),
		"the lookup query must return at most one row (one shard name) per key")
}

// errLookup turns a failure to run the lookup into a client error:
// Postgres's own errors keep their SQLSTATE, a timeout is 57014, anything
// else (dial, broken connection) 08001.
func (t *Table) errLookup(what string, err error) *pgconn.PgError {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pgErr(pe.Code, fmt.Sprintf("directory %s for table %q on %s: %s", what, t.name, t.node, pe.Message), pe.Hint)
	}
	if errors.Is(err, context.Canceled) {
		return pgErr(pgwire.QueryCanceled, fmt.Sprintf("directory %s for table %q canceled", what, t.name), "")
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return pgErr(pgwire.QueryCanceled, fmt.Sprintf("directory %s for table %q on %s timed out after %s", what, t.name, t.node, t.timeout),
			"check the directory node, or raise directory.timeout")
	}
	return pgErr(pgwire.ClientCannotConnect, fmt.Sprintf("directory %s for table %q on %s failed: could not connect", what, t.name, t.node),
		"check that directory.node is up and accepts the configured user; pgrouter's log has the details")
}

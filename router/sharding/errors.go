package sharding

import (
	"fmt"

	"github.com/pgrouter/pgrouter/pgwire"

	"github.com/jackc/pgx/v5/pgconn"
)

// SQLSTATE codes used by this package.
const (
	codeInvalidParameterValue = pgwire.InvalidParameterValue       // NULL or unmatched key
	codeInvalidText           = pgwire.InvalidTextRepresentation   // key text does not parse
	codeInvalidBinary         = pgwire.InvalidBinaryRepresentation // key binary value does not decode
	codeOutOfRange            = pgwire.NumericValueOutOfRange      // integer key overflows int64
	codeFeatureNotSupported   = pgwire.FeatureNotSupported         // directory sharding, unsupported param type
)

// Error messages never include the key value itself: it may be personal data
// (an e-mail used as a shard key) and errors end up in client and server logs.

func pgErr(code, msg, hint string) *pgconn.PgError {
	return &pgconn.PgError{Severity: "ERROR", Code: code, Message: msg, Hint: hint}
}

func errNullKey(table string) *pgconn.PgError {
	return pgErr(codeInvalidParameterValue,
		fmt.Sprintf("shard key of table %q is NULL", table),
		fmt.Sprintf("give the shard key a value, or set null_shard for table %q", table))
}

func errUnmatched(table string, t Type, fn string) *pgconn.PgError {
	hint := "add a range covering it or set default"
	if fn == "list" {
		hint = "add the value to a list or set default"
	}
	return pgErr(codeInvalidParameterValue,
		fmt.Sprintf("no shard of table %q covers this %s shard key", table, t),
		fmt.Sprintf("%s (table %q)", hint, table))
}

func errBadKey(table string, t Type) *pgconn.PgError {
	return pgErr(codeInvalidParameterValue,
		fmt.Sprintf("invalid %s shard key for table %q", t, table),
		"a uuid key must hold 16 bytes")
}

func errDirectory(table string) *pgconn.PgError {
	return pgErr(codeFeatureNotSupported,
		fmt.Sprintf("table %q is directory-sharded and no directory lookup is available here", table),
		"directory keys are resolved by the running proxy (it queries the lookup table); use /* pgrouter: shard=NAME */ to route by hand")
}

func errSyntax(t Type) *pgconn.PgError {
	return pgErr(codeInvalidText,
		fmt.Sprintf("invalid input syntax for %s shard key", t), "")
}

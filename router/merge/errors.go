package merge

import (
	"fmt"

	"github.com/pgrouter/pgrouter/pgwire"

	"github.com/jackc/pgx/v5/pgconn"
)

const (
	codeFeatureNotSupported = pgwire.FeatureNotSupported
	codeDatatypeMismatch    = pgwire.DatatypeMismatch
	codeNumericOutOfRange   = pgwire.NumericValueOutOfRange
	codeInvalidText         = pgwire.InvalidTextRepresentation
	codeInternal            = pgwire.InternalError
)

// unsupported is the error for a construct the merge engine cannot handle.
func unsupported(construct, hint string) *pgconn.PgError {
	return &pgconn.PgError{Severity: "ERROR", Code: codeFeatureNotSupported,
		Message: fmt.Sprintf("%s is not supported in a multi-shard query", construct), Hint: hint}
}

func pgErr(code, hint, format string, args ...any) *pgconn.PgError {
	return &pgconn.PgError{Severity: "ERROR", Code: code, Message: fmt.Sprintf(format, args...), Hint: hint}
}

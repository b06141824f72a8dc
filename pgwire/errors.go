package pgwire

import (
	"bytes"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// Error is a fresh ERROR to a client. Every call returns a new value: a
// caller may adjust it (WithMessage and friends copy anyway).
func Error(code, msg, hint string) *pgconn.PgError {
	return &pgconn.PgError{Severity: "ERROR", Code: code, Message: msg, Hint: hint}
}

// Fatal is a fresh FATAL: the connection ends after it.
func Fatal(code, msg string) *pgconn.PgError {
	return &pgconn.PgError{Severity: "FATAL", Code: code, Message: msg}
}

// Errors handed around are shared: the topology keeps one per shard and
// reason, and every session that meets it gets the same pointer. They are
// never changed; these return a changed copy instead.

// AsFatal is e with severity FATAL (e itself unchanged).
func AsFatal(e *pgconn.PgError) *pgconn.PgError {
	cp := *e
	cp.Severity = "FATAL"
	return &cp
}

// WithMessage is e with message msg (e itself unchanged).
func WithMessage(e *pgconn.PgError, msg string) *pgconn.PgError {
	cp := *e
	cp.Message = msg
	return &cp
}

// WithHint is e with hint h (e itself unchanged).
func WithHint(e *pgconn.PgError, h string) *pgconn.PgError {
	cp := *e
	cp.Hint = h
	return &cp
}

// AppendError encodes e as an ErrorResponse (severity ERROR when unset).
func AppendError(dst []byte, e *pgconn.PgError) []byte {
	sev := e.Severity
	if sev == "" {
		sev = "ERROR"
	}
	dst, _ = (&pgproto3.ErrorResponse{
		Severity:            sev,
		SeverityUnlocalized: sev,
		Code:                e.Code,
		Message:             e.Message,
		Detail:              e.Detail,
		Hint:                e.Hint,
		Position:            e.Position,
	}).Encode(dst)
	return dst
}

// DecodeError reads an ErrorResponse body into a fresh value.
func DecodeError(body []byte) *pgconn.PgError {
	var e pgproto3.ErrorResponse
	if err := e.Decode(body); err != nil {
		return Error(InternalError, "undecodable error from backend", "")
	}
	return &pgconn.PgError{Severity: e.Severity, Code: e.Code, Message: e.Message, Detail: e.Detail, Hint: e.Hint, Position: e.Position, Routine: e.Routine}
}

// IsFatal reports whether an ErrorResponse body has severity FATAL or
// PANIC (Postgres always sends the severity field first).
func IsFatal(body []byte) bool {
	return bytes.HasPrefix(body, []byte("SFATAL\x00")) || bytes.HasPrefix(body, []byte("SPANIC\x00"))
}

// AppendReady encodes ReadyForQuery with status (TxIdle, TxActive, TxFailed).
func AppendReady(dst []byte, status byte) []byte {
	return append(dst, ReadyForQuery, 0, 0, 0, 5, status)
}

// Fixed backend messages without a body.
var (
	MsgParseComplete   = []byte{ParseComplete, 0, 0, 0, 4}
	MsgBindComplete    = []byte{BindComplete, 0, 0, 0, 4}
	MsgCloseComplete   = []byte{CloseComplete, 0, 0, 0, 4}
	MsgNoData          = []byte{NoData, 0, 0, 0, 4}
	MsgPortalSuspended = []byte{PortalSuspended, 0, 0, 0, 4}
	MsgEmptyQuery      = []byte{EmptyQueryResponse, 0, 0, 0, 4}
	MsgSync            = []byte{Sync, 0, 0, 0, 4}
	MsgFlush           = []byte{Flush, 0, 0, 0, 4}
)

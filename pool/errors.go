package pool

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"

	"github.com/pgrouter/pgrouter/pgwire"

	"github.com/jackc/pgx/v5/pgconn"
)

// SQLSTATEs used by the pool for errors meant for clients.
const (
	CodeTooManyConnections = pgwire.TooManyConnections  // wait timeout, full wait queue
	CodeConnectFailed      = pgwire.ClientCannotConnect // sqlclient_unable_to_establish_sqlconnection
	CodeConnectionFailure  = pgwire.ConnectionFailure   // pool closed
)

func (p *Pool) errTimeout() error {
	size := p.Size()
	return &pgconn.PgError{
		Severity: "ERROR",
		Code:     CodeTooManyConnections,
		Message: fmt.Sprintf("timed out after %s waiting for a backend connection to %s",
			p.cfg.AcquireTimeout, p.cfg.Name),
		Hint: fmt.Sprintf("All %d backend connections of this pool are busy. Raise the pool size or "+
			"acquire_timeout, or look for long-running or idle-in-transaction clients.", size),
	}
}

func (p *Pool) errQueueFull(waiting int) error {
	return &pgconn.PgError{
		Severity: "ERROR",
		Code:     CodeTooManyConnections,
		Message:  fmt.Sprintf("pool wait queue is full (%d clients waiting for %s)", waiting, p.cfg.Name),
		Hint:     "Raise max_waiters or the pool size, or reduce client concurrency.",
	}
}

// errDial reports an unreachable backend. The cause comes from pgconn, whose
// errors name user and database but never the password.
// The client learns which node failed and the kind of failure; the
// backend's address, server user and the full cause go to the log only
// (dialFailure), since clients are not necessarily trusted with them.
func (p *Pool) errDial(cause error) error {
	return &pgconn.PgError{
		Severity: "ERROR",
		Code:     CodeConnectFailed,
		Message:  fmt.Sprintf("could not connect to backend %s: %s", p.cfg.Name, dialReason(cause)),
		Hint:     "pgrouter's log has the details (\"backend connect failed\")",
	}
}

// dialReason names the kind of a dial failure without addresses or names.
func dialReason(err error) string {
	var pe *pgconn.PgError
	var ne net.Error
	switch {
	case errors.As(err, &pe):
		return "the server refused the login (SQLSTATE " + pe.Code + ")"
	case errors.As(err, &ne) && ne.Timeout():
		return "connection timed out"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case strings.Contains(err.Error(), "server requested"):
		// pgconn's require_auth refusal (backend_tls.allow_cleartext_password).
		return "the server asked for an authentication method pgrouter does not allow (cleartext password?)"
	case isTLSFailure(err):
		return "TLS failed (server certificate not trusted, or the server does not offer TLS)"
	}
	return "network error"
}

func (p *Pool) errClosed() error {
	return &pgconn.PgError{
		Severity: "ERROR",
		Code:     CodeConnectionFailure,
		Message:  fmt.Sprintf("pool %s is closed", p.cfg.Name),
		Hint:     "The backend pool was shut down or removed by a configuration reload; retry.",
	}
}

// IsClosed reports whether err is the error Acquire returns from a closed pool.
func IsClosed(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == CodeConnectionFailure &&
		strings.HasPrefix(pe.Message, "pool ") && strings.HasSuffix(pe.Message, " is closed")
}

// IsDialFailure reports whether err is Acquire's "could not connect to
// backend" error: the dial or login failed, so no client byte reached the
// backend and the statement may safely go to another node.
func IsDialFailure(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == CodeConnectFailed &&
		strings.HasPrefix(pe.Message, "could not connect to backend ")
}

// isTLSFailure reports a certificate or handshake failure, or a server that
// refused TLS (sslmode require and up never fall back to plaintext).
func isTLSFailure(err error) bool {
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var ci x509.CertificateInvalidError
	var ve *tls.CertificateVerificationError
	return errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &ci) || errors.As(err, &ve) ||
		strings.Contains(err.Error(), "server refused TLS connection")
}

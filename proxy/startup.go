package proxy

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/pgrouter/pgrouter/pgwire"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// AdminDatabase is the virtual database of the admin console.
const AdminDatabase = "pgrouter"

// Bounds of the messages a client sends before it is authenticated, as in
// Postgres (MAX_STARTUP_PACKET_LENGTH, PG_MAX_AUTH_TOKEN_LENGTH): a header
// claiming more is refused before anything is allocated for it.
const (
	maxStartupPacket = 10000
	maxAuthMessage   = 65535
	// loginBuffer is the read buffer of a connection until it has logged in:
	// logins are small, and unauthenticated connections must be cheap.
	loginBuffer = 1024
)

// Request codes of the startup phase.
const (
	cancelRequestCode = 80877102
	sslRequestCode    = 80877103
	gssEncRequestCode = 80877104
)

// handle runs one client connection from startup to close.
func (s *Server) handle(c net.Conn) {
	defer c.Close()
	st := s.state.Load()
	loginTimeout := st.cfg.Pool.LoginTimeout.D()
	if loginTimeout <= 0 {
		loginTimeout = 10 * time.Second
	}
	c.SetDeadline(time.Now().Add(loginTimeout))

	c, rd, startup, err := s.readStartup(c, st)
	if err != nil || startup == nil {
		if err != nil {
			s.log.Debug("startup failed", "addr", c.RemoteAddr().String(), "err", err)
		}
		return
	}
	if max := st.cfg.Pool.MaxClients; max > 0 && s.clients.Load() >= int64(clientLimit(st.cfg, startup)) {
		s.limits.rejected.WithLabelValues(limitMaxClients).Inc()
		fatal(c, pgwire.TooManyConnections, "sorry, too many clients already", fmt.Sprintf("pgrouter pool.max_clients is %d", max))
		s.log.Info("login refused", "user", startup.Parameters["user"], "db", startup.Parameters["database"],
			"addr", c.RemoteAddr().String(), "sqlstate", pgwire.TooManyConnections, "err", "too many clients (pool.max_clients)")
		return
	}
	s.clients.Add(1)
	defer s.clients.Add(-1)

	ss, err := s.login(c, rd, st, startup)
	if err != nil {
		s.loginFailed(c, startup, err)
		return
	}
	c.SetDeadline(time.Time{})
	defer s.unregister(ss)
	if !ss.admin {
		defer s.limits.leave(ss.user.Name, ss.dbName) // admitted by login
	}
	connected := time.Now()
	_, overTLS := c.(*tls.Conn)
	s.log.Info("client connected", "client_id", ss.pid, "user", ss.user.Name, "db", ss.dbName,
		"addr", c.RemoteAddr().String(), "tls", overTLS)
	ss.run()
	s.log.Info("client disconnected", "client_id", ss.pid, "user", ss.user.Name, "db", ss.dbName,
		"duration_ms", time.Since(connected).Milliseconds(), "queries", ss.queries.Load())
}

// loginFailed answers and logs a login that did not succeed.
func (s *Server) loginFailed(c net.Conn, startup *pgproto3.StartupMessage, err error) {
	pe := loginError(err)
	if pe == nil {
		// The client left mid-login (psql does, to ask for a password).
		s.log.Debug("login abandoned", "user", startup.Parameters["user"], "db", startup.Parameters["database"],
			"addr", c.RemoteAddr().String(), "err", err.Error())
		return
	}
	if errors.As(err, new(errMessageTooLong)) {
		s.guard.refusedMessage()
	}
	c.Write(pgwire.AppendError(nil, pe))
	// The user and database are what the client sent; the password never
	// reaches a log (auth errors do not carry it).
	s.log.Info("login refused", "user", startup.Parameters["user"], "db", startup.Parameters["database"],
		"addr", c.RemoteAddr().String(), "sqlstate", pe.Code, "err", pe.Message)
}

// loginError is the FATAL a failed login answers with; nil when the client
// just went away. Errors may be shared values: they are copied, not changed.
func loginError(err error) *pgconn.PgError {
	var pe *pgconn.PgError
	var long errMessageTooLong
	switch {
	case errors.As(err, &pe):
		return pgwire.AsFatal(pe)
	case errors.As(err, &long):
		return pgwire.Fatal(pgwire.ProtocolViolation, long.Error())
	}
	return nil
}

// readStartup handles SSLRequest/GSSENCRequest/CancelRequest until a
// StartupMessage arrives. A nil message with nil error means "done, close".
// The reader returned holds whatever the client sent after the startup
// message: it must be read next.
func (s *Server) readStartup(c net.Conn, st *serverState) (net.Conn, *frameReader, *pgproto3.StartupMessage, error) {
	rd := newLoginReader(c)
	for {
		body, err := rd.nextStartup()
		if err != nil {
			if pe := loginError(err); pe != nil {
				c.Write(pgwire.AppendError(nil, pe))
				s.guard.refusedMessage()
			}
			return c, nil, nil, err
		}
		switch code := binary.BigEndian.Uint32(body); code {
		case sslRequestCode:
			tc, err := s.startTLS(c, rd, st)
			if err != nil {
				return c, nil, nil, err
			}
			if tc != nil {
				c, rd = tc, newLoginReader(tc)
			}
		case gssEncRequestCode:
			if _, err := c.Write([]byte{pgwire.EncryptionRefused}); err != nil {
				return c, nil, nil, err
			}
		case cancelRequestCode:
			var m pgproto3.CancelRequest
			if m.Decode(body) == nil {
				s.cancel(m.ProcessID, m.SecretKey)
			}
			return c, nil, nil, nil
		default:
			if _, overTLS := c.(*tls.Conn); !overTLS && st.cfg.TLS.Mode == "require" {
				// As a pg_hba.conf with only hostssl lines answers (28000).
				fatal(c, pgwire.InvalidAuthorizationSpec, "pgrouter requires TLS: connection without encryption refused", "connect with sslmode=require or stronger")
				return c, nil, nil, errors.New("plaintext client refused (tls.mode require)")
			}
			if code>>16 != 3 {
				fatal(c, pgwire.FeatureNotSupported, fmt.Sprintf("unsupported frontend protocol %d.%d", code>>16, code&0xffff), "")
				return c, nil, nil, fmt.Errorf("protocol %x", code)
			}
			var m pgproto3.StartupMessage
			if err := m.Decode(body); err != nil {
				fatal(c, pgwire.ProtocolViolation, "invalid startup packet layout", "")
				return c, nil, nil, err
			}
			return c, rd, &m, nil
		}
	}
}

func newLoginReader(c net.Conn) *frameReader {
	rd := newFrameReader(c, loginBuffer)
	rd.max = maxStartupPacket
	return rd
}

// startTLS answers an SSLRequest; a nil conn without error means "continue
// in plaintext". Bytes that came with the SSLRequest would be read as if
// they had been encrypted, so they are refused, as Postgres does
// (CVE-2021-23214).
func (s *Server) startTLS(c net.Conn, rd *frameReader, st *serverState) (net.Conn, error) {
	if st.tls == nil {
		_, err := c.Write([]byte{pgwire.EncryptionRefused})
		return nil, err
	}
	if rd.buffered() > 0 {
		fatal(c, pgwire.ProtocolViolation, "received unencrypted data after SSL request", "")
		return nil, errors.New("unencrypted data after SSL request")
	}
	if _, err := c.Write([]byte{pgwire.EncryptionAccepted}); err != nil {
		return nil, err
	}
	tc := tls.Server(c, st.tls)
	if err := tc.Handshake(); err != nil {
		return nil, fmt.Errorf("tls handshake: %w", err)
	}
	return tc, nil
}

// login authenticates the client and builds its session. rd is the
// connection's reader so far: what it has buffered goes to the session.
func (s *Server) login(c net.Conn, rd *frameReader, st *serverState, m *pgproto3.StartupMessage) (*session, error) {
	userName := m.Parameters["user"]
	dbName := m.Parameters["database"]
	if dbName == "" {
		dbName = userName
	}
	if m.Parameters["replication"] != "" && m.Parameters["replication"] != "false" {
		return nil, pgwire.Error(pgwire.FeatureNotSupported, "pgrouter does not support replication connections", "connect to a shard directly")
	}
	if wait := s.guard.blocked(c.RemoteAddr(), st.cfg.Limits); wait > 0 {
		return nil, pgwire.Error(pgwire.TooManyConnections, "too many failed login attempts from this address",
			fmt.Sprintf("retry in %s (pgrouter limits.auth_failures)", wait.Round(time.Second)))
	}
	ua := st.users[userName]
	if err := s.authenticate(c, rd, st, userName, ua); err != nil {
		// Only the client's own credentials count: a shard refusing
		// pgrouter's server login later must not throttle its clients.
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == pgwire.InvalidPassword {
			s.guard.failed(c.RemoteAddr(), st.cfg.Limits)
		}
		return nil, err
	}
	ss := newSession(s, st, c, ua.user, rd.pending())
	ss.dbName = dbName
	if dbName == AdminDatabase {
		if !ua.user.Admin {
			return nil, pgwire.Error(pgwire.InvalidAuthorizationSpec, fmt.Sprintf("user %q is not an admin of pgrouter", userName), "set admin: true for the user in the config")
		}
		ss.admin = true
	} else {
		ss.db = st.cfg.Database(dbName)
		ss.router = st.routers[dbName]
		if ss.db == nil || ss.router == nil {
			return nil, pgwire.Error(pgwire.InvalidCatalogName, fmt.Sprintf("database %q does not exist", dbName), "databases are listed in the pgrouter config")
		}
	}
	ss.setStartupParams(m.Parameters)

	if !ss.admin { // Postgres checks connection limits after authentication too
		if pe := s.limits.admit(&st.cfg.Limits, ua.user, dbName); pe != nil {
			return nil, pe
		}
		ss.rate = s.limits.limiter(&st.cfg.Limits, ua.user)
	}
	params, err := ss.loginParams(context.Background())
	if err != nil {
		if !ss.admin {
			s.limits.leave(userName, dbName)
		}
		return nil, err
	}
	ss.hints.NonStandardStrings = params["standard_conforming_strings"] == "off"
	ss.stringsSession = ss.hints.NonStandardStrings
	ss.stringsKnown = true // from now on backends are synced to it (stringsSync)
	ss.params.start(params)
	out := appendMsg(nil, &pgproto3.AuthenticationOk{})
	for k, v := range params {
		out = appendMsg(out, &pgproto3.ParameterStatus{Name: k, Value: v})
	}
	var secret [4]byte
	rand.Read(secret[:])
	ss.secret = secret
	s.register(ss)
	out = appendMsg(out, &pgproto3.BackendKeyData{ProcessID: ss.pid, SecretKey: secret[:]})
	out = pgwire.AppendReady(out, pgwire.TxIdle)
	if err := writeAll(c, out); err != nil {
		s.unregister(ss)
		if !ss.admin {
			s.limits.leave(userName, dbName)
		}
		return nil, err
	}
	return ss, nil
}

// fatal writes a FATAL ErrorResponse (best effort; the connection closes next).
func fatal(c net.Conn, code, msg, hint string) {
	e := pgwire.Fatal(code, msg)
	e.Hint = hint
	c.Write(pgwire.AppendError(nil, e))
}

func (ss *session) secretMatches(secret []byte) bool {
	return len(secret) == 4 && subtle.ConstantTimeCompare(secret, ss.secret[:]) == 1
}

// parseOptions reads "-c name=value" / "--name=value" pairs from the libpq
// options startup parameter.
func parseOptions(opts string) map[string]string {
	out := map[string]string{}
	fields := strings.Fields(strings.ReplaceAll(opts, `\ `, "\x00"))
	for i := 0; i < len(fields); i++ {
		f := strings.ReplaceAll(fields[i], "\x00", " ")
		var kv string
		switch {
		case f == "-c" && i+1 < len(fields):
			i++
			kv = strings.ReplaceAll(fields[i], "\x00", " ")
		case strings.HasPrefix(f, "-c"):
			kv = f[2:]
		case strings.HasPrefix(f, "--"):
			kv = f[2:]
		default:
			continue
		}
		if k, v, ok := strings.Cut(kv, "="); ok {
			out[strings.ToLower(strings.ReplaceAll(k, "-", "_"))] = v
		}
	}
	return out
}

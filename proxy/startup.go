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

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgrouter/pgrouter/config"
)

// AdminDatabase is the virtual database of the admin console.
const AdminDatabase = "pgrouter"

// handle runs one client connection from startup to close.
func (s *Server) handle(c net.Conn) {
	defer c.Close()
	st := s.state.Load()
	loginTimeout := st.cfg.Pool.LoginTimeout.D()
	if loginTimeout <= 0 {
		loginTimeout = 10 * time.Second
	}
	c.SetDeadline(time.Now().Add(loginTimeout))

	c, startup, err := s.readStartup(c, st)
	if err != nil || startup == nil {
		if err != nil {
			s.log.Debug("startup failed", "addr", c.RemoteAddr().String(), "err", err)
		}
		return
	}
	if max := st.cfg.Pool.MaxClients; max > 0 && s.clients.Load() >= int64(max) {
		fatal(c, "53300", "sorry, too many clients already", fmt.Sprintf("pgrouter pool.max_clients is %d", max))
		s.log.Info("login refused", "user", startup.Parameters["user"], "db", startup.Parameters["database"],
			"addr", c.RemoteAddr().String(), "sqlstate", "53300", "err", "too many clients (pool.max_clients)")
		return
	}
	s.clients.Add(1)
	defer s.clients.Add(-1)

	ss, err := s.login(c, st, startup)
	if err != nil {
		var pe *pgconn.PgError
		if !errors.As(err, &pe) {
			// The client left mid-login (psql does, to ask for a password).
			s.log.Debug("login abandoned", "user", startup.Parameters["user"], "db", startup.Parameters["database"],
				"addr", c.RemoteAddr().String(), "err", err.Error())
			return
		}
		pe.Severity = "FATAL"
		c.Write(appendError(nil, pe))
		// The user and database are what the client sent; the password never
		// reaches a log (auth errors do not carry it).
		s.log.Info("login refused", "user", startup.Parameters["user"], "db", startup.Parameters["database"],
			"addr", c.RemoteAddr().String(), "sqlstate", pe.Code, "err", pe.Message)
		return
	}
	c.SetDeadline(time.Time{})
	defer s.unregister(ss)
	connected := time.Now()
	_, overTLS := c.(*tls.Conn)
	s.log.Info("client connected", "client_id", ss.pid, "user", ss.user.Name, "db", ss.dbName,
		"addr", c.RemoteAddr().String(), "tls", overTLS)
	ss.run()
	s.log.Info("client disconnected", "client_id", ss.pid, "user", ss.user.Name, "db", ss.dbName,
		"duration_ms", time.Since(connected).Milliseconds(), "queries", ss.queries.Load())
}

// readStartup handles SSLRequest/GSSENCRequest/CancelRequest until a
// StartupMessage arrives. A nil message with nil error means "done, close".
func (s *Server) readStartup(c net.Conn, st *serverState) (net.Conn, *pgproto3.StartupMessage, error) {
	be := pgproto3.NewBackend(c, c)
	for {
		msg, err := be.ReceiveStartupMessage()
		if err != nil {
			fatal(c, "08P01", "invalid startup packet", "")
			return c, nil, err
		}
		switch m := msg.(type) {
		case *pgproto3.SSLRequest:
			if st.tls == nil {
				if _, err := c.Write([]byte{'N'}); err != nil {
					return c, nil, err
				}
				continue
			}
			if _, err := c.Write([]byte{'S'}); err != nil {
				return c, nil, err
			}
			tc := tls.Server(c, st.tls)
			if err := tc.Handshake(); err != nil {
				return c, nil, fmt.Errorf("tls handshake: %w", err)
			}
			c = tc
			be = pgproto3.NewBackend(c, c)
		case *pgproto3.GSSEncRequest:
			if _, err := c.Write([]byte{'N'}); err != nil {
				return c, nil, err
			}
		case *pgproto3.CancelRequest:
			s.cancel(m.ProcessID, m.SecretKey)
			return c, nil, nil
		case *pgproto3.StartupMessage:
			if m.ProtocolVersion>>16 != 3 {
				fatal(c, "0A000", fmt.Sprintf("unsupported frontend protocol %d.%d", m.ProtocolVersion>>16, m.ProtocolVersion&0xffff), "")
				return c, nil, fmt.Errorf("protocol %x", m.ProtocolVersion)
			}
			return c, m, nil
		default:
			fatal(c, "08P01", "unexpected startup message", "")
			return c, nil, fmt.Errorf("unexpected %T", msg)
		}
	}
}

// login authenticates the client and builds its session.
func (s *Server) login(c net.Conn, st *serverState, m *pgproto3.StartupMessage) (*session, error) {
	userName := m.Parameters["user"]
	dbName := m.Parameters["database"]
	if dbName == "" {
		dbName = userName
	}
	if m.Parameters["replication"] != "" && m.Parameters["replication"] != "false" {
		return nil, pgErr("0A000", "pgrouter does not support replication connections", "connect to a shard directly")
	}
	ua := st.users[userName]
	if ua == nil {
		return nil, pgErr("28P01", fmt.Sprintf("password authentication failed for user %q", userName), "")
	}
	be := pgproto3.NewBackend(c, c)
	if err := authenticate(be, ua); err != nil {
		return nil, err
	}
	ss := newSession(s, st, c, ua.user)
	ss.dbName = dbName
	if dbName == AdminDatabase {
		if !ua.user.Admin {
			return nil, pgErr("28000", fmt.Sprintf("user %q is not an admin of pgrouter", userName), "set admin: true for the user in the config")
		}
		ss.admin = true
	} else {
		ss.db = st.cfg.Database(dbName)
		ss.router = st.routers[dbName]
		if ss.db == nil || ss.router == nil {
			return nil, pgErr("3D000", fmt.Sprintf("database %q does not exist", dbName), "databases are listed in the pgrouter config")
		}
	}
	ss.setStartupParams(m.Parameters)

	params, err := ss.loginParams(context.Background())
	if err != nil {
		return nil, err
	}
	out := appendMsg(nil, &pgproto3.AuthenticationOk{})
	for k, v := range params {
		out = appendMsg(out, &pgproto3.ParameterStatus{Name: k, Value: v})
	}
	var secret [4]byte
	rand.Read(secret[:])
	ss.secret = secret
	s.register(ss)
	out = appendMsg(out, &pgproto3.BackendKeyData{ProcessID: ss.pid, SecretKey: secret[:]})
	out = appendReady(out, 'I')
	if err := writeAll(c, out); err != nil {
		s.unregister(ss)
		return nil, err
	}
	return ss, nil
}

// authenticate runs the configured method's exchange.
func authenticate(be *pgproto3.Backend, ua *userAuth) error {
	fail := pgErr("28P01", fmt.Sprintf("password authentication failed for user %q", ua.user.Name), "")
	switch ua.method {
	case "trust":
		return nil
	case "md5":
		var salt [4]byte
		rand.Read(salt[:])
		be.Send(&pgproto3.AuthenticationMD5Password{Salt: salt})
		if err := be.Flush(); err != nil {
			return err
		}
		if err := be.SetAuthType(pgproto3.AuthTypeMD5Password); err != nil {
			return err
		}
		msg, err := be.Receive()
		if err != nil {
			return err
		}
		pm, ok := msg.(*pgproto3.PasswordMessage)
		if !ok || !ua.md5Matches(pm.Password, salt) {
			return fail
		}
		return nil
	default:
		return scramExchange(be, ua, fail)
	}
}

func scramExchange(be *pgproto3.Backend, ua *userAuth, fail error) error {
	conv, err := ua.scramConversation()
	if err != nil {
		return err
	}
	be.Send(&pgproto3.AuthenticationSASL{AuthMechanisms: []string{"SCRAM-SHA-256"}})
	if err := be.Flush(); err != nil {
		return err
	}
	be.SetAuthType(pgproto3.AuthTypeSASL)
	msg, err := be.Receive()
	if err != nil {
		return err
	}
	init, ok := msg.(*pgproto3.SASLInitialResponse)
	if !ok || init.AuthMechanism != "SCRAM-SHA-256" {
		return fail
	}
	first, err := conv.Step(string(init.Data))
	if err != nil {
		return fail
	}
	be.Send(&pgproto3.AuthenticationSASLContinue{Data: []byte(first)})
	if err := be.Flush(); err != nil {
		return err
	}
	be.SetAuthType(pgproto3.AuthTypeSASLContinue)
	msg, err = be.Receive()
	if err != nil {
		return err
	}
	resp, ok := msg.(*pgproto3.SASLResponse)
	if !ok {
		return fail
	}
	final, err := conv.Step(string(resp.Data))
	if err != nil || !conv.Valid() {
		return fail
	}
	be.Send(&pgproto3.AuthenticationSASLFinal{Data: []byte(final)})
	return be.Flush()
}

// fatal writes a FATAL ErrorResponse (best effort; the connection closes next).
func fatal(c net.Conn, code, msg, hint string) {
	c.Write(appendError(nil, &pgconn.PgError{Severity: "FATAL", Code: code, Message: msg, Hint: hint}))
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

var _ = binary.BigEndian
var _ config.User

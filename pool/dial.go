package pool

import (
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"net"
	"strconv"
	"strings"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgrouter/pgrouter/pool/sockio"
)

// dial opens one backend: pgconn does startup, auth and parameter status, then
// we hijack the socket and speak raw frames on it from here on. Failures are
// 08001 PgErrors (or wrap ctx.Err() when the caller gave up).
func (p *Pool) dial(ctx context.Context) (*Conn, error) {
	start := time.Now()
	cc, err := p.connConfig()
	if err != nil {
		return nil, p.errDial(err)
	}
	dctx, cancel := context.WithTimeout(ctx, p.cfg.ConnectTimeout)
	defer cancel()
	pc, err := pgconn.ConnectConfig(dctx, cc)
	if err != nil {
		return nil, p.dialFailure(ctx, err)
	}
	// SyncConn proves pgconn holds no unread bytes, so the raw socket is the
	// whole truth: startup ended at ReadyForQuery and nothing follows it.
	if err := pc.SyncConn(dctx); err != nil {
		pc.Close(context.Background())
		return nil, p.dialFailure(ctx, err)
	}
	hc, err := pc.Hijack()
	if err != nil {
		pc.Close(context.Background())
		return nil, p.dialFailure(ctx, err)
	}
	// pgconn clears its own deadlines, but the proxy must start from a clean socket.
	if err := hc.Conn.SetDeadline(time.Time{}); err != nil {
		hc.Conn.Close()
		return nil, p.dialFailure(ctx, err)
	}
	prepared, err := lru.New[string, struct{}](p.cfg.PreparedCache)
	if err != nil { // only for a non-positive size, which New prevents
		hc.Conn.Close()
		return nil, p.errDial(err)
	}
	now := time.Now()
	c := &Conn{
		NetConn:      sockio.Wrap(hc.Conn), // raw-syscall I/O on the hot path
		PID:          hc.PID,
		Addr:         p.cfg.Addr,
		ServerParams: hc.ParameterStatuses,
		Prepared:     prepared,
		Settings:     make(map[string]string),
		CreatedAt:    now,
		LastUsed:     now,
		secretKey:    append([]byte(nil), hc.SecretKey...),
	}
	if len(hc.SecretKey) >= 4 {
		c.SecretKey = binary.BigEndian.Uint32(hc.SecretKey)
	}
	if c.ServerParams == nil {
		c.ServerParams = make(map[string]string)
	}
	p.cfg.Log.Info("backend connected", "backend_pid", c.PID, "addr", c.Addr,
		"duration_ms", time.Since(start).Milliseconds())
	return c, nil
}

// dialFailure prefers the caller's own cancellation or deadline (ctx is the
// caller's context, not the ConnectTimeout one) over a connect error.
func (p *Pool) dialFailure(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("pool %s: dialing a backend: %w", p.cfg.Name, ctxErr)
	}
	p.cfg.Log.Warn("backend connect failed", "addr", p.cfg.Addr, "err", err.Error())
	return p.errDial(err)
}

// connConfig builds the pgconn config from the pool Config only. ParseConfig
// must create it (ConnectConfig insists), and ParseConfig reads PG* environment
// variables, so every field that the environment could set is overwritten.
func (p *Pool) connConfig() (*pgconn.Config, error) {
	host, portStr, err := net.SplitHostPort(p.cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("bad address %q: %w", p.cfg.Addr, err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("bad port in address %q: %w", p.cfg.Addr, err)
	}
	cc, err := ParseTLSConfig(host, p.cfg.SSLMode, p.cfg.SSLRootCert)
	if err != nil {
		return nil, err
	}
	cc.Host, cc.Port = host, uint16(port)
	cc.User, cc.Password, cc.Database = p.cfg.User, p.cfg.Password, p.cfg.Database
	cc.Fallbacks = nil
	cc.SSLNegotiation, cc.SSLCertMode, cc.ChannelBinding = "", "", "disable"
	cc.KerberosSrvName, cc.KerberosSpn, cc.RequireAuth = "", "", p.cfg.RequireAuth
	cc.ValidateConnect, cc.AfterConnect = nil, nil
	// Protocol 3.0 keeps cancel keys at 4 bytes, matching Conn.SecretKey.
	cc.MinProtocolVersion, cc.MaxProtocolVersion = "3.0", "3.0"
	cc.ConnectTimeout = p.cfg.ConnectTimeout
	cc.RuntimeParams = maps.Clone(p.cfg.RuntimeParams)
	if cc.RuntimeParams == nil {
		cc.RuntimeParams = make(map[string]string)
	}
	return cc, nil
}

// ParseTLSConfig is pgconn.ParseConfig for host with sslmode and CA file
// only (empty sslmode = disable): pgconn builds the tls.Config, with the
// server name verify-full checks. Environment variables (PGSSLMODE, …)
// cannot weaken it: both keys are always given, and no fallback to
// plaintext is kept.
func ParseTLSConfig(host, sslmode, rootCert string) (*pgconn.Config, error) {
	if sslmode == "" {
		sslmode = "disable"
	}
	dsn := fmt.Sprintf("host='%s' sslmode=%s", strings.ReplaceAll(host, "'", ""), sslmode)
	if rootCert != "" {
		dsn += fmt.Sprintf(" sslrootcert='%s'", strings.NewReplacer(`\`, `\\`, "'", `\'`).Replace(rootCert))
	}
	cc, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("building connection config: %w", err)
	}
	cc.Fallbacks = nil
	return cc, nil
}

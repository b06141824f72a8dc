package main

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// idleClients is how many logged-in, idle clients the memory figure holds
// (issue 14: ≤ 16 KiB of proxy RSS each).
const idleClients = 10000

// idleLimits lets the single bench user hold that many pgrouter clients.
const idleLimits = "  max_clients_per_user: 20000\n  max_clients_per_database: 20000"

// idleName is the pseudo-scenario's name (for --only).
const idleName = "idle 10000 clients"

// IdleResult is one proxy holding idleClients idle clients.
type IdleResult struct {
	Target           string
	Clients          int
	BeforeKiB, AtKiB int64 // proxy VmRSS before connecting and with every client connected
	Connect          time.Duration
	Err              string
}

// perClient is the proxy RSS each idle client costs, in KiB.
func (r IdleResult) perClient() float64 {
	if r.Clients == 0 {
		return 0
	}
	return float64(r.AtKiB-r.BeforeKiB) / float64(r.Clients)
}

// idleRuns measures fresh PgBouncer and pgrouter processes (so that no
// earlier load sits in their heaps) with idleClients clients that each
// logged in and ran one SELECT 1, then went quiet.
func (b *bench) idleRuns(ctx context.Context) {
	if !strings.Contains(idleName, b.opts.only) || ctx.Err() != nil {
		return
	}
	dir := filepath.Join(b.workdir, "pgbouncer-idle")
	if err := os.Mkdir(dir, 0o755); err != nil {
		b.note("idle clients not measured: %v", err)
		return
	}
	primary := b.main.Shards[0].Primary
	if t, err := startPgBouncer(ctx, dir, primary, benchDB, b.main.Password, b.opts.pool); err != nil {
		b.idle = append(b.idle, IdleResult{Target: "pgbouncer", Err: err.Error()})
	} else {
		b.idle = append(b.idle, measureIdle(ctx, t, idleClients))
		t.Proc.stop()
	}
	if b.routerBin == "" {
		return
	}
	spec := b.router.spec
	spec.name, spec.variant = "pgrouter-idle", true
	t, err := startPgrouter(ctx, spec)
	if err != nil {
		b.idle = append(b.idle, IdleResult{Target: "pgrouter", Err: err.Error()})
		return
	}
	r := measureIdle(ctx, t, idleClients)
	r.Target = "pgrouter"
	b.idle = append(b.idle, r)
	t.Proc.stop()
}

// measureIdle connects n clients to t, waits for the proxy to settle and
// reads its RSS; then closes them.
func measureIdle(ctx context.Context, t *Target, n int) IdleResult {
	res := IdleResult{Target: t.Name}
	var err error
	if res.BeforeKiB, err = rssKiB(t.Proc.pid()); err != nil {
		res.Err = err.Error()
		return res
	}
	fmt.Fprintf(os.Stderr, "bench: %-32s %-9s ", idleName, t.Name)
	start := time.Now()
	conns, err := openIdle(ctx, t, n)
	res.Connect = time.Since(start)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	if err != nil {
		res.Err = fmt.Sprintf("%d of %d clients connected: %v", len(conns), n, err)
		fmt.Fprintln(os.Stderr, res.Err)
		return res
	}
	time.Sleep(2 * time.Second) // let the proxy finish whatever the logins started
	if res.AtKiB, err = rssKiB(t.Proc.pid()); err != nil {
		res.Err = err.Error()
	}
	res.Clients = len(conns)
	fmt.Fprintf(os.Stderr, "RSS %d → %d KiB: %.1f KiB/client (connecting took %s)\n", res.BeforeKiB, res.AtKiB,
		res.perClient(), res.Connect.Round(time.Millisecond))
	return res
}

// openIdle logs n clients in over 16 parallel dialers.
func openIdle(ctx context.Context, t *Target, n int) ([]net.Conn, error) {
	var (
		mu       sync.Mutex
		conns    = make([]net.Conn, 0, n)
		firstErr error
		wg       sync.WaitGroup
		next     = make(chan struct{}, n)
	)
	for range n {
		next <- struct{}{}
	}
	close(next)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				c, err := loginIdle(ctx, t)
				mu.Lock()
				if err != nil {
					firstErr = cmpErr(firstErr, err)
				} else {
					conns = append(conns, c)
				}
				stop := firstErr != nil
				mu.Unlock()
				if stop {
					return
				}
			}
		}()
	}
	wg.Wait()
	return conns, firstErr
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// loginIdle opens one client: startup, md5 or cleartext password, SELECT 1.
func loginIdle(ctx context.Context, t *Target) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(t.Host, strconv.Itoa(t.Port)))
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	fe := pgproto3.NewFrontend(c, c)
	fe.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber,
		Parameters: map[string]string{"user": t.User, "database": t.DB}})
	if err = untilReady(fe, t); err == nil {
		fe.Send(&pgproto3.Query{String: "SELECT 1"})
		err = untilReady(fe, t)
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

// untilReady flushes what fe holds and reads until ReadyForQuery,
// answering password requests on the way.
func untilReady(fe *pgproto3.Frontend, t *Target) error {
	if err := fe.Flush(); err != nil {
		return err
	}
	for {
		msg, err := fe.Receive()
		if err != nil {
			return err
		}
		switch m := msg.(type) {
		case *pgproto3.AuthenticationMD5Password:
			fe.Send(&pgproto3.PasswordMessage{Password: md5Password(t.User, t.Password, m.Salt)})
		case *pgproto3.AuthenticationCleartextPassword:
			fe.Send(&pgproto3.PasswordMessage{Password: t.Password})
		case *pgproto3.ErrorResponse:
			return fmt.Errorf("%s: %s (%s)", m.Severity, m.Message, m.Code)
		case *pgproto3.ReadyForQuery:
			return nil
		default:
			continue
		}
		if err := fe.Flush(); err != nil {
			return err
		}
	}
}

func md5Password(user, password string, salt [4]byte) string {
	inner := md5.Sum([]byte(password + user))
	h := md5.New()
	h.Write([]byte(hex.EncodeToString(inner[:])))
	h.Write(salt[:])
	return "md5" + hex.EncodeToString(h.Sum(nil))
}

// rssKiB reads VmRSS of a process from /proc/PID/status.
func rssKiB(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				return strconv.ParseInt(f[0], 10, 64)
			}
		}
	}
	return 0, errors.New("no VmRSS in /proc status")
}

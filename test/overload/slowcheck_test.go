package overload

import (
	"bytes"
	"context"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgrouter/pgrouter/test/testenv"
)

// The health checks of a slow primary. A relay in front of the primary
// (checkRelay) slows the monitor's connections alone (application_name
// pgrouter-monitor): it holds their answers, or delays the first answer of
// a new one (a login an overloaded host forks late). Checks time out after
// 300 ms, two in a row open the breaker, and a backend dial may take 2 s
// (pool.connect_timeout).
const slowCheckHealth = "  interval: 200ms\n  timeout: 300ms\n  fail_threshold: 2\n  breaker_cooldown: 500ms\n  ban_duration: 1s"

// TestSlowChecksOfAServingPrimary: the checks of the only primary time out
// while the primary keeps answering the clients' transactions. The node is
// slow, not down: its breaker must stay closed and the clients see no error
// — opening it would refuse every statement of the shard (57P03), an outage
// made by the proxy. Once nothing completes on it any more (the load
// stops) and even a check given connect_timeout gets no answer, it is found
// down; and it serves again when its checks answer.
func TestSlowChecksOfAServingPrimary(t *testing.T) {
	e, r := startRelayedEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	l := startLoad(t, e.AppDSN(), 4)
	time.Sleep(300 * time.Millisecond) // the load runs before the checks slow down
	stalledAt := time.Now()
	r.hold(true)
	time.Sleep(3 * time.Second) // 15 check intervals, 10 timeouts: 5× fail_threshold
	res := l.finish()
	var during, errs int
	for _, o := range res {
		if o.at.Before(stalledAt) {
			continue
		}
		during++
		if o.err != nil {
			errs++
			if errs <= 5 {
				t.Logf("error %v after the checks stalled (sqlstate %q): %v", o.at.Sub(stalledAt).Round(time.Millisecond), sqlState(o.err), o.err)
			}
		}
	}
	t.Logf("%d statements while the checks timed out, %d errors; %d monitor answers held", during, errs, r.slowed.Load())
	if during == 0 {
		t.Fatal("the load ran no statement while the checks were stalled")
	}
	if r.slowed.Load() == 0 {
		t.Fatal("the relay never held a monitor connection's answer: the checks were not slowed")
	}
	if errs != 0 {
		t.Errorf("%d of %d statements failed while the primary served them and only its checks timed out", errs, during)
	}
	checkBreakerClosed(t, e)

	// Idle, the timed-out checks are all there is to go by: down (watched
	// on the metrics, as a statement would be traffic that answers).
	if !waitBreakerOpen(t, e, 15*time.Second) {
		t.Fatal("with no traffic and every check unanswered, the primary's breaker did not open within 15s")
	}
	c, err := pgx.Connect(ctx, e.AppDSN())
	if err == nil {
		_, err = c.Exec(ctx, "select 1")
		c.Close(context.Background())
	}
	if sqlState(err) != "57P03" {
		t.Errorf("a statement to the primary found down: %v, want 57P03", err)
	}
	r.hold(false)
	if !waitQuery(ctx, e.AppDSN(), 10*time.Second) {
		t.Error("the primary did not serve again within 10s of its checks answering")
	}
}

// TestSaturatedPrimaryOfAnIdleProxy: nothing runs through pgrouter, and
// every login to the primary takes 1 s (other clients saturate it), so
// every check on a new connection times out. Each would open the breaker;
// a check given connect_timeout (2 s) answers, so the primary stays in
// service: a statement arriving then must run, not get 57P03.
func TestSaturatedPrimaryOfAnIdleProxy(t *testing.T) {
	e, r := startRelayedEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r.delayLogins(time.Second)
	r.dropMonitor() // the monitor logs in again, slowly
	opened := false
	for end := time.Now().Add(4 * time.Second); time.Now().Before(end) && !opened; time.Sleep(100 * time.Millisecond) {
		opened = breakerOpen(t, e)
	}
	t.Logf("%d monitor logins delayed", r.slowed.Load())
	if opened {
		t.Fatal("the primary's breaker opened while every check was answered within connect_timeout")
	}
	if r.slowed.Load() < 2 {
		t.Fatalf("%d monitor logins delayed over 4s, want ≥ 2: the checks were not slowed", r.slowed.Load())
	}
	c, err := pgx.Connect(ctx, e.AppDSN())
	if err == nil {
		_, err = c.Exec(ctx, "select 1")
		c.Close(context.Background())
	}
	if err != nil {
		t.Errorf("a statement while the primary's logins are slow: %v", err)
	}
}

// startRelayedEnv starts a one-shard environment with slowCheckHealth and
// moves its primary behind a checkRelay (a reload).
func startRelayedEnv(t *testing.T) (*testenv.Env, *checkRelay) {
	t.Helper()
	e := startEnv(t, testenv.Options{Sections: map[string]string{
		"health": slowCheckHealth,
		"pool":   "  connect_timeout: 2s",
	}})
	primary := e.Cluster.Shards[0].Primary
	r := startCheckRelay(t, primary.Addr())
	b, err := os.ReadFile(e.Path)
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(string(b), primary.Addr(), r.addr(), 1)
	if cfg == string(b) {
		t.Fatalf("primary %s not found in the generated config", primary.Addr())
	}
	if err := os.WriteFile(e.Path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := e.Proxy.Reload(e.Path, false); err != nil {
		t.Fatalf("reload onto the relay: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if !waitQuery(ctx, e.AppDSN(), 10*time.Second) {
		t.Fatal("no statement succeeded through the relay within 10s")
	}
	return e, r
}

const primaryBreaker = `pgrouter_node_breaker_state{node="shard0-primary",shard="shard0",state=`

func breakerOpen(t *testing.T, e *testenv.Env) bool {
	return strings.Contains(scrape(t, e), primaryBreaker+`"open"} 1`)
}

func checkBreakerClosed(t *testing.T, e *testenv.Env) {
	t.Helper()
	if closed := metric(t, scrape(t, e), primaryBreaker+`"closed"}`); closed != 1 {
		t.Errorf("breaker state closed = %v while the primary was serving; want 1", closed)
	}
}

// waitBreakerOpen polls the metrics until the primary's breaker is open.
func waitBreakerOpen(t *testing.T, e *testenv.Env, d time.Duration) bool {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if breakerOpen(t, e) {
			return true
		}
	}
	return false
}

// waitQuery polls until a fresh client's statement succeeds (false: not within d).
func waitQuery(ctx context.Context, dsn string, d time.Duration) bool {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		qctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		c, err := pgx.Connect(qctx, dsn)
		if err == nil {
			_, err = c.Exec(qctx, "select 1")
			c.Close(context.Background())
		}
		cancel()
		if err == nil {
			return true
		}
	}
	return false
}

// checkRelay forwards TCP connections to target. A connection whose first
// client bytes name application_name pgrouter-monitor is the health
// monitor's. Held (hold), the relay keeps what the server sends on those
// (new ones included: their login times out); with a login delay
// (delayLogins), the first answer on a new one comes that much later.
// Everything else is forwarded as is.
type checkRelay struct {
	ln       net.Listener
	target   string
	held     atomic.Bool
	loginLag atomic.Int64 // nanoseconds
	slowed   atomic.Int64 // monitor answers held or delayed

	mu       sync.Mutex
	conns    []net.Conn
	monitors []net.Conn // client side of the monitor's connections
}

func startCheckRelay(t *testing.T, target string) *checkRelay {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &checkRelay{ln: ln, target: target}
	t.Cleanup(r.close)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go r.handle(c)
		}
	}()
	return r
}

func (r *checkRelay) addr() string { return r.ln.Addr().String() }

func (r *checkRelay) hold(on bool) { r.held.Store(on) }

func (r *checkRelay) delayLogins(d time.Duration) { r.loginLag.Store(int64(d)) }

// dropMonitor closes the monitor's connections: its next check logs in again.
func (r *checkRelay) dropMonitor() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.monitors {
		c.Close()
	}
}

func (r *checkRelay) handle(c net.Conn) {
	u, err := net.Dial("tcp", r.target)
	if err != nil {
		c.Close()
		return
	}
	r.mu.Lock()
	r.conns = append(r.conns, c, u)
	r.mu.Unlock()
	defer c.Close()
	defer u.Close()
	var monitor atomic.Bool
	go func() {
		defer u.Close()
		defer c.Close()
		buf := make([]byte, 32<<10)
		seen := 0
		for {
			n, err := c.Read(buf)
			if n > 0 {
				if seen < 4096 && !monitor.Load() && bytes.Contains(buf[:n], []byte("pgrouter-monitor")) {
					monitor.Store(true)
					r.mu.Lock()
					r.monitors = append(r.monitors, c)
					r.mu.Unlock()
				}
				seen += n
				if _, werr := u.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	buf := make([]byte, 32<<10)
	lagged := false
	for {
		n, err := u.Read(buf)
		if n > 0 && monitor.Load() {
			if lag := time.Duration(r.loginLag.Load()); lag > 0 && !lagged {
				lagged = true
				r.slowed.Add(1)
				time.Sleep(lag)
			}
			if r.held.Load() {
				r.slowed.Add(1)
				for r.held.Load() {
					time.Sleep(10 * time.Millisecond) // the monitor gives up (its timeout) and closes
				}
			}
		}
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (r *checkRelay) close() {
	r.ln.Close()
	r.held.Store(false)
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.conns {
		c.Close()
	}
}

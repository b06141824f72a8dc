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

// TestSlowChecksOfAServingPrimary: the health checks of the only primary
// time out (an overloaded host forks their connection late) while the
// primary keeps answering the clients' transactions. The node is slow, not
// down: its breaker must stay closed and the clients see no error — opening
// it would refuse every statement of the shard (57P03), an outage made by
// the proxy. Once nothing completes on it any more (the load stops), the
// same timed-out checks find it down; and it serves again when its checks
// answer.
//
// The checks are slowed alone by a relay in front of the primary that holds
// the answers of the monitor's connections (application_name
// pgrouter-monitor) while stalled.
func TestSlowChecksOfAServingPrimary(t *testing.T) {
	e := startEnv(t, testenv.Options{Sections: map[string]string{
		"health": "  interval: 200ms\n  timeout: 300ms\n  fail_threshold: 2\n  breaker_cooldown: 500ms\n  ban_duration: 1s",
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
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
	if !waitQuery(ctx, e.AppDSN(), 10*time.Second) {
		t.Fatal("no statement succeeded through the relay within 10s")
	}

	l := startLoad(t, e.AppDSN(), 4)
	time.Sleep(300 * time.Millisecond) // the load runs before the checks slow down
	stalledAt := time.Now()
	r.stall(true)
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
	t.Logf("%d statements while the checks timed out, %d errors; %d monitor connections held", during, errs, r.held.Load())
	if during == 0 {
		t.Fatal("the load ran no statement while the checks were stalled")
	}
	if r.held.Load() == 0 {
		t.Fatal("the relay never held a monitor connection's answer: the checks were not slowed")
	}
	if errs != 0 {
		t.Errorf("%d of %d statements failed while the primary served them and only its checks timed out", errs, during)
	}
	if closed := metric(t, scrape(t, e), `pgrouter_node_breaker_state{node="shard0-primary",shard="shard0",state="closed"}`); closed != 1 {
		t.Errorf("breaker state closed = %v while the primary was serving; want 1", closed)
	}

	// Idle, the timed-out checks are all there is to go by: down (watched
	// on the metrics, as a statement would be traffic that answers).
	if !waitBreakerOpen(t, e, 10*time.Second) {
		t.Fatal("with no traffic and every check timing out, the primary's breaker did not open within 10s")
	}
	c, err := pgx.Connect(ctx, e.AppDSN())
	if err == nil {
		_, err = c.Exec(ctx, "select 1")
		c.Close(context.Background())
	}
	if sqlState(err) != "57P03" {
		t.Errorf("a statement to the primary found down: %v, want 57P03", err)
	}
	r.stall(false)
	if !waitQuery(ctx, e.AppDSN(), 10*time.Second) {
		t.Error("the primary did not serve again within 10s of its checks answering")
	}
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

// waitBreakerOpen polls the metrics until the primary's breaker is open.
func waitBreakerOpen(t *testing.T, e *testenv.Env, d time.Duration) bool {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if strings.Contains(scrape(t, e), `pgrouter_node_breaker_state{node="shard0-primary",shard="shard0",state="open"} 1`) {
			return true
		}
	}
	return false
}

// checkRelay forwards TCP connections to target. A connection whose first
// client bytes name application_name pgrouter-monitor is the health
// monitor's; while stalled, the relay holds what the server sends on those
// (new ones included: their login times out), and forwards everything else.
type checkRelay struct {
	ln      net.Listener
	target  string
	stalled atomic.Bool
	held    atomic.Int64 // monitor reads held back

	mu    sync.Mutex
	conns []net.Conn
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

func (r *checkRelay) stall(on bool) { r.stalled.Store(on) }

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
				if seen < 4096 && bytes.Contains(buf[:n], []byte("pgrouter-monitor")) {
					monitor.Store(true)
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
	for {
		n, err := u.Read(buf)
		if n > 0 {
			if monitor.Load() && r.stalled.Load() {
				r.held.Add(1)
				for monitor.Load() && r.stalled.Load() {
					time.Sleep(10 * time.Millisecond) // the monitor gives up (its timeout) and closes
				}
			}
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
	r.stalled.Store(false)
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.conns {
		c.Close()
	}
}

package proxy

import (
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pgrouter/pgrouter/config"
)

// Accept back-off bounds: short enough to serve again quickly once
// descriptors are free, long enough not to spin on EMFILE.
const (
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = time.Second
	// maxTrackedAddrs bounds the failed-login table: beyond it, addresses
	// whose window has ended are dropped, and new ones are not tracked.
	maxTrackedAddrs = 100000
)

// guard protects the listener from unauthenticated abuse: it throttles
// addresses that fail to log in too often and keeps the accept loop alive
// through descriptor exhaustion, counting both.
type guard struct {
	mu       sync.Mutex
	failures map[string]*addrFailures // by client IP

	acceptErrBurst int // accept errors in the current burst (accept loop only)

	acceptErrors  prometheus.Counter
	authFailures  prometheus.Counter
	authThrottled prometheus.Counter
	oversized     prometheus.Counter
}

// addrFailures counts one address's failed logins in a fixed window.
type addrFailures struct {
	n     int
	until time.Time // end of the window that started with the first failure
}

func (g *guard) init(reg *prometheus.Registry) {
	g.failures = map[string]*addrFailures{}
	g.acceptErrors = prometheus.NewCounter(prometheus.CounterOpts{Name: "pgrouter_accept_errors_total",
		Help: "Errors accepting client connections (e.g. out of file descriptors); pgrouter backs off and keeps serving."})
	g.authFailures = prometheus.NewCounter(prometheus.CounterOpts{Name: "pgrouter_auth_failures_total",
		Help: "Failed client logins (wrong password or unknown user)."})
	g.authThrottled = prometheus.NewCounter(prometheus.CounterOpts{Name: "pgrouter_auth_throttled_total",
		Help: "Logins refused because their address failed too often (limits.auth_failures)."})
	g.oversized = prometheus.NewCounter(prometheus.CounterOpts{Name: "pgrouter_oversized_messages_total",
		Help: "Client connections closed for a message longer than allowed (startup, authentication or limits.max_message_size)."})
	reg.MustRegister(g.acceptErrors, g.authFailures, g.authThrottled, g.oversized)
}

// addrKey is the unit failed logins are counted by: the IPv4 address, or
// the IPv6 /64 (one host usually holds a whole /64 and can pick any of it).
func addrKey(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		if ip4 := ta.IP.To4(); ip4 != nil {
			return ip4.String()
		}
		return ta.IP.Mask(net.CIDRMask(64, 128)).String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

// blocked returns how long the address must still wait, 0 if it may log in.
func (g *guard) blocked(a net.Addr, l config.Limits) time.Duration {
	if l.AuthFailures <= 0 {
		return 0
	}
	now := time.Now()
	g.mu.Lock()
	f := g.failures[addrKey(a)]
	g.mu.Unlock()
	if f == nil || f.n < l.AuthFailures || !now.Before(f.until) {
		return 0
	}
	g.authThrottled.Inc()
	return f.until.Sub(now)
}

// failed records a failed login from the address.
func (g *guard) failed(a net.Addr, l config.Limits) {
	g.authFailures.Inc()
	if l.AuthFailures <= 0 {
		return
	}
	now := time.Now()
	key := addrKey(a)
	g.mu.Lock()
	defer g.mu.Unlock()
	f := g.failures[key]
	if f == nil || !now.Before(f.until) {
		if f == nil && len(g.failures) >= maxTrackedAddrs && !g.pruneLocked(now) {
			return
		}
		f = &addrFailures{until: now.Add(l.AuthFailureWindow.D())}
		g.failures[key] = f
	}
	f.n++
}

// pruneLocked drops ended windows; it reports whether room was made.
func (g *guard) pruneLocked(now time.Time) bool {
	for k, f := range g.failures {
		if !now.Before(f.until) {
			delete(g.failures, k)
		}
	}
	return len(g.failures) < maxTrackedAddrs
}

func (g *guard) refusedMessage() { g.oversized.Inc() }

// acceptFailed counts an accept error, logs the first of a burst, and
// returns the next back-off (doubling from acceptBackoffMin, capped).
func (g *guard) acceptFailed(log *slog.Logger, err error, prev time.Duration) time.Duration {
	g.acceptErrors.Inc()
	g.acceptErrBurst++
	if prev == 0 {
		log.Warn("accepting client connections failed; retrying with back-off", "err", err.Error(),
			"max_backoff", acceptBackoffMax.String())
		return acceptBackoffMin
	}
	return min(2*prev, acceptBackoffMax)
}

// acceptRecovered logs the end of a burst of accept errors.
func (g *guard) acceptRecovered(log *slog.Logger) {
	log.Info("accepting client connections again", "errors", g.acceptErrBurst)
	g.acceptErrBurst = 0
}

package pool

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// Config describes one pool: one (node, user, database) triple. Zero durations
// disable the corresponding behaviour unless a default is stated.
type Config struct {
	Name     string // for logs and metrics, e.g. "shard0-primary/app/appdb"
	Addr     string // host:port
	User     string
	Password string
	Database string

	Size            int               // max open backends (>= 1; 0 means 1)
	MinIdle         int               // backends kept open while idle (clamped to Size)
	MaxWaiters      int               // bounded FIFO wait queue; 0 = unlimited
	AcquireTimeout  time.Duration     // wait for a free backend; then 53300. 0 = wait until ctx ends
	IdleTimeout     time.Duration     // close backends idle longer than this (never below MinIdle)
	MaxLifetime     time.Duration     // close backends older than this on release (and when idle)
	HealthCheckIdle time.Duration     // ping before reuse when idle longer than this; 0 = never ping
	ConnectTimeout  time.Duration     // dial + startup + auth; default 5s
	PreparedCache   int               // size of Conn.Prepared; default 500
	RuntimeParams   map[string]string // startup parameters sent to the backend (e.g. application_name)

	// SSLMode and SSLRootCert are libpq's sslmode (disable, require,
	// verify-ca, verify-full; "" = disable) and CA file for the backend
	// connection. RequireAuth is libpq's require_auth ("" = any method).
	SSLMode, SSLRootCert, RequireAuth string

	// Log receives backend lifecycle lines (connected, closed with the reason,
	// dial failures); the caller puts shard/node/user/db on it. nil: no logs.
	Log *slog.Logger

	// PingTimeout bounds the health-check round trip; default 2s.
	PingTimeout time.Duration
	// OnWait, if set, is called once for every Acquire that had to queue, with
	// the time it spent queued (also when it then timed out or was canceled).
	// It runs on the acquiring goroutine without the pool lock held; keep it cheap
	// (a histogram Observe).
	OnWait func(d time.Duration)
}

// Stats is a point-in-time view of a pool (PgBouncer SHOW POOLS vocabulary).
type Stats struct {
	Active, Idle, Total, Waiting int // Total includes dials in progress
	AcquireTimeouts              uint64
	QueueFull                    uint64 // acquires shed at once because MaxWaiters were waiting
	Opened, Closed               uint64

	MaxWait   time.Duration // how long the oldest current waiter has waited
	WaitCount uint64        // acquires that had to queue (cumulative)
	WaitTime  time.Duration // total time spent queued (cumulative)
}

// Conn is one backend connection checked out of a pool. The caller speaks the
// protocol on NetConn directly (raw frames). Fields marked proxy-managed are
// owned by whoever holds the Conn.
type Conn struct {
	// NetConn is the backend socket; a TCP one reads and writes with raw
	// syscalls (package sockio), which spares the scheduler a handoff per call.
	NetConn   net.Conn
	PID       uint32
	SecretKey uint32
	Addr      string

	// ServerParams are the ParameterStatus values the backend reported (proxy-managed after startup).
	ServerParams map[string]string
	// Prepared holds the server-side names of statements prepared on this backend (proxy-managed).
	Prepared *lru.Cache[string, struct{}]
	// Settings are session GUCs set on this backend beyond its startup parameters (proxy-managed).
	Settings map[string]string

	CreatedAt time.Time
	LastUsed  time.Time // when the conn was last released (start of its idle period)

	secretKey   []byte    // full cancel key as the server sent it
	checkedOut  bool      // guarded by the pool mutex; catches double Release/Discard
	closeReason string    // set by the reaper for its log line
	scratch     [256]byte // health-check and terminate I/O without allocating
}

// Pool is a bounded set of backend connections. All methods are safe for
// concurrent use.
type Pool struct {
	cfg      Config
	size     int
	minIdle  int
	waiters  sync.Pool // *waiter, recycled so that waiting does not allocate
	stopReap context.CancelFunc
	reaped   chan struct{}  // closed when the reaper goroutine has exited
	retiring sync.WaitGroup // backends being closed off the caller's path (retire)

	mu        sync.Mutex
	idle      []*Conn // stack: released last = on top; bottom = idle longest
	waitq     waitQueue
	total     int // open conns + dials in progress
	active    int // checked out (including conns granted to a waiter not yet awake)
	closed    bool
	zeroAct   chan struct{} // closed when active reaches 0 (for Drain)
	timeouts  uint64
	queueFull uint64
	opened    uint64
	closedN   uint64
	waitCount uint64
	waitTime  time.Duration
	released  time.Time // last Release of a healthy conn (see LastReleased)
}

// New creates a pool; it dials nothing until MinIdle > 0 or the first Acquire.
func New(cfg Config) *Pool {
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 5 * time.Second
	}
	if cfg.PingTimeout <= 0 {
		cfg.PingTimeout = 2 * time.Second
	}
	if cfg.PreparedCache <= 0 {
		cfg.PreparedCache = 500
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	p := &Pool{cfg: cfg, size: max(cfg.Size, 1)}
	p.minIdle = min(max(cfg.MinIdle, 0), p.size)
	p.waiters.New = func() any { return &waiter{ch: make(chan grant, 1)} }
	if interval := reapInterval(cfg, p.minIdle); interval > 0 {
		ctx, cancel := context.WithCancel(context.Background())
		p.stopReap = cancel
		p.reaped = make(chan struct{})
		go p.reap(ctx, interval)
	}
	return p
}

// Acquire returns an idle backend or dials one, waiting FIFO when the pool is
// full. It fails with *pgconn.PgError 53300 on timeout or a full wait queue,
// 08001 when the backend cannot be reached, 08006 when the pool is closed, and
// with an error wrapping ctx.Err() when ctx ends first.
func (p *Pool) Acquire(ctx context.Context) (*Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("pool %s: acquire: %w", p.cfg.Name, err)
	}
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, p.errClosed()
		}
		// Strict FIFO: nobody may take an idle conn or a free slot ahead of a waiter.
		if p.waitq.len() == 0 {
			if c := p.popIdleLocked(); c != nil {
				p.mu.Unlock()
				if p.cfg.HealthCheckIdle > 0 && time.Since(c.LastUsed) > p.cfg.HealthCheckIdle {
					if err := c.ping(ctx, p.cfg.PingTimeout); err != nil {
						p.discard(c, "health check failed") // frees the slot; loop to try the next idle conn or dial
						if ctxErr := ctx.Err(); ctxErr != nil {
							// Don't let an expired ctx fail (and discard) every idle conn in turn.
							return nil, fmt.Errorf("pool %s: health check: %w", p.cfg.Name, ctxErr)
						}
						continue
					}
				}
				return c, nil
			}
			if p.total < p.size {
				p.total++
				p.mu.Unlock()
				return p.dialSlot(ctx)
			}
		}
		if p.cfg.MaxWaiters > 0 && p.waitq.len() >= p.cfg.MaxWaiters {
			n := p.waitq.len()
			p.queueFull++
			p.mu.Unlock()
			return nil, p.errQueueFull(n)
		}
		w := p.waiters.Get().(*waiter)
		w.enq = time.Now()
		p.waitq.push(w)
		p.mu.Unlock()
		return p.wait(ctx, w)
	}
}

// popIdleLocked takes the most recently released idle conn (its cache is hottest).
func (p *Pool) popIdleLocked() *Conn {
	n := len(p.idle)
	if n == 0 {
		return nil
	}
	c := p.idle[n-1]
	p.idle[n-1] = nil
	p.idle = p.idle[:n-1]
	p.active++
	c.checkedOut = true
	return c
}

// dialSlot dials into a slot the caller already reserved in p.total.
func (p *Pool) dialSlot(ctx context.Context) (*Conn, error) {
	c, err := p.dial(ctx)
	p.mu.Lock()
	if err != nil {
		p.freeSlotLocked()
		p.mu.Unlock()
		return nil, err
	}
	p.opened++
	if p.closed {
		p.total--
		p.closedN++
		p.mu.Unlock()
		p.closeConn(c, "pool closed")
		return nil, p.errClosed()
	}
	p.active++
	c.checkedOut = true
	p.mu.Unlock()
	return c, nil
}

// freeSlotLocked gives up one reserved slot: the oldest waiter inherits it and
// dials, otherwise the pool shrinks.
func (p *Pool) freeSlotLocked() {
	if p.closed {
		p.total--
		return
	}
	if p.total <= p.size { // not over a size lowered by SetSize
		if w := p.waitq.pop(); w != nil {
			p.grantLocked(w, grant{kind: grantDial})
			return
		}
	}
	p.total--
}

// Release returns a backend that is idle (ReadyForQuery 'I') to the pool.
func (p *Pool) Release(c *Conn) {
	now := time.Now()
	c.LastUsed = now
	expired := p.cfg.MaxLifetime > 0 && now.Sub(c.CreatedAt) > p.cfg.MaxLifetime
	p.mu.Lock()
	p.checkInLocked(c, "Release")
	p.released = now
	if shrunk := p.total > p.size; expired || shrunk || p.closed {
		p.closedN++
		p.noteIdleLocked()
		p.mu.Unlock()
		reason := "pool closed"
		switch {
		case expired:
			reason = "max_lifetime"
		case shrunk:
			reason = "pool size lowered"
		}
		p.retireLater(reason, c)
		return
	}
	if w := p.waitq.pop(); w != nil {
		p.active++
		c.checkedOut = true
		p.grantLocked(w, grant{kind: grantConn, c: c})
		p.mu.Unlock()
		return
	}
	p.idle = append(p.idle, c)
	p.noteIdleLocked()
	p.mu.Unlock()
}

// LastReleased is when a backend last came back healthy from a round trip
// (zero if none yet): evidence that its node answers, which the health
// monitor weighs against a check that timed out.
func (p *Pool) LastReleased() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.released
}

// Discard closes a backend that is broken or in an unknown state; the oldest
// waiter, if any, dials a replacement.
func (p *Pool) Discard(c *Conn) { p.discard(c, "discarded: broken or in an unknown state") }

func (p *Pool) discard(c *Conn, reason string) {
	p.mu.Lock()
	p.checkInLocked(c, "Discard")
	p.closedN++
	p.noteIdleLocked()
	p.mu.Unlock()
	p.retireLater(reason, c)
}

// closeConn closes a backend and logs why, with how long it lived.
func (p *Pool) closeConn(c *Conn, reason string) {
	p.cfg.Log.Info("backend closed", "backend_pid", c.PID, "reason", reason,
		"duration_ms", time.Since(c.CreatedAt).Milliseconds())
	c.close()
}

// retire closes backends that still hold their slots in p.total, in
// parallel, and returns once each is gone (see Conn.close) and its slot
// freed: a waiter that inherits a slot dials only then, so the pool never
// has more backends on its node than its size, not even for the moment a
// closing one takes to exit.
func (p *Pool) retire(reason string, cs ...*Conn) {
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Go(func() { p.retireOne(c, reason) })
	}
	wg.Wait()
}

// retireLater is retire off the caller's path (a session releasing a
// backend does not wait for it to exit); Pool.Close waits for these.
func (p *Pool) retireLater(reason string, c *Conn) {
	if p.isClosed() {
		p.retireOne(c, reason) // the pool's end: nothing to keep waiting
		return
	}
	p.retiring.Go(func() { p.retireOne(c, reason) })
}

func (p *Pool) retireOne(c *Conn, reason string) {
	p.closeConn(c, reason)
	p.mu.Lock()
	p.freeSlotLocked()
	p.mu.Unlock()
}

func (p *Pool) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

func (p *Pool) checkInLocked(c *Conn, op string) {
	if !c.checkedOut {
		p.mu.Unlock()
		panic("pool: " + op + " of a conn that is not checked out (double Release/Discard?)")
	}
	c.checkedOut = false
	p.active--
}

// noteIdleLocked wakes Drain when the last checked-out conn comes back.
func (p *Pool) noteIdleLocked() {
	if p.active == 0 && p.zeroAct != nil {
		close(p.zeroAct)
		p.zeroAct = nil
	}
}

// Stats reports current counters.
func (p *Pool) Stats() Stats {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	s := Stats{
		Active: p.active, Idle: len(p.idle), Total: p.total, Waiting: p.waitq.len(),
		AcquireTimeouts: p.timeouts, QueueFull: p.queueFull, Opened: p.opened, Closed: p.closedN,
		WaitCount: p.waitCount, WaitTime: p.waitTime,
	}
	if w := p.waitq.front(); w != nil {
		s.MaxWait = now.Sub(w.enq)
	}
	return s
}

// Close closes idle backends now and the others as they are released. New
// and queued Acquires fail with 08006 "pool ... is closed". Close is idempotent.
func (p *Pool) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	idle := p.idle
	p.idle = nil
	p.closedN += uint64(len(idle))
	for w := p.waitq.pop(); w != nil; w = p.waitq.pop() {
		p.grantLocked(w, grant{kind: grantClosed})
	}
	p.noteIdleLocked()
	p.mu.Unlock()
	if p.stopReap != nil {
		p.stopReap()
		<-p.reaped
	}
	p.retire("pool closed", idle...)
	p.retiring.Wait() // those and earlier ones: a closed pool has no backend left
}

// Drain waits until no conn is checked out (Active == 0) or ctx ends. It does
// not stop new Acquires; call Close first for a shutdown.
func (p *Pool) Drain(ctx context.Context) error {
	p.mu.Lock()
	if p.active == 0 {
		p.mu.Unlock()
		return nil
	}
	if p.zeroAct == nil {
		p.zeroAct = make(chan struct{})
	}
	ch := p.zeroAct
	p.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Config returns the pool's configuration with defaults applied.
func (p *Pool) Config() Config { return p.cfg }

// CloseIdle closes every idle backend now (their slots go to waiters, who
// dial). The topology calls it when a node fails a check: after a restart
// or a crash those sockets are dead, and handing one to a client would turn
// its next statement into a connection error.
func (p *Pool) CloseIdle() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.closedN += uint64(len(idle))
	p.noteIdleLocked()
	p.mu.Unlock()
	p.retire("idle backend closed: its node failed a check", idle...)
}

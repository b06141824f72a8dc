// Package pool owns backend connections: dialing (pgconn.Connect then Hijack),
// bounded pools with a FIFO wait queue and timeouts, idle/lifetime reaping,
// health checks before reuse. It makes no routing decisions.
package pool

import (
	"context"
	"net"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// Config describes one pool: one (node, user, database) triple.
type Config struct {
	Name     string // for logs and metrics, e.g. "shard0-primary/app/appdb"
	Addr     string // host:port
	User     string
	Password string
	Database string

	Size            int           // max open backends (>= 1)
	MinIdle         int           // backends kept open while idle
	MaxWaiters      int           // bounded FIFO wait queue; 0 = unlimited
	AcquireTimeout  time.Duration // wait for a free backend; then 53300
	IdleTimeout     time.Duration // close backends idle longer than this (never below MinIdle)
	MaxLifetime     time.Duration // close backends older than this on release
	HealthCheckIdle time.Duration // ping before reuse when idle longer than this
	ConnectTimeout  time.Duration
	PreparedCache   int               // size of Conn.Prepared
	RuntimeParams   map[string]string // startup parameters sent to the backend (e.g. application_name)
}

// Stats is a point-in-time view of a pool (PgBouncer SHOW POOLS vocabulary).
type Stats struct {
	Active, Idle, Total, Waiting int
	AcquireTimeouts              uint64
	Opened, Closed               uint64
}

// Conn is one backend connection checked out of a pool. The caller speaks the
// protocol on NetConn directly (raw frames). Fields marked proxy-managed are
// owned by whoever holds the Conn.
type Conn struct {
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
	LastUsed  time.Time
}

// Cancel sends a CancelRequest for this backend's current query.
func (c *Conn) Cancel(ctx context.Context) error { panic("todo") }

// Pool is a bounded set of backend connections.
type Pool struct{}

// New creates a pool; it dials nothing until MinIdle > 0 or the first Acquire.
func New(cfg Config) *Pool { panic("todo") }

// Acquire returns an idle backend or dials one, waiting FIFO when the pool is
// full. It fails with *pgconn.PgError 53300 on timeout or a full wait queue,
// and 08001 when the backend cannot be reached.
func (p *Pool) Acquire(ctx context.Context) (*Conn, error) { panic("todo") }

// Release returns a backend that is idle (ReadyForQuery 'I') to the pool.
func (p *Pool) Release(c *Conn) { panic("todo") }

// Discard closes a backend that is broken or in an unknown state.
func (p *Pool) Discard(c *Conn) { panic("todo") }

// Stats reports current counters.
func (p *Pool) Stats() Stats { panic("todo") }

// Close closes idle backends now and the others as they are released.
func (p *Pool) Close() { panic("todo") }

package directory

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// connPool is the few plain pgconn connections one table's lookups use on
// its directory node. Lookups are short and rare (cache misses), so a
// bounded set of connections opened on demand is enough; the proxy's
// backend pools are for relayed client traffic and hijack their sockets.
type connPool struct {
	addr, user, password, dbname string
	idle                         chan *pgconn.PgConn
	slots                        chan struct{} // one token per open connection
	closed                       atomic.Bool
}

func newConnPool(addr, user, password, dbname string, size int) *connPool {
	return &connPool{addr: addr, user: user, password: password, dbname: dbname,
		idle: make(chan *pgconn.PgConn, size), slots: make(chan struct{}, size)}
}

// get returns an idle connection, dials one while under the size, or waits
// for one to come back.
func (p *connPool) get(ctx context.Context) (*pgconn.PgConn, error) {
	select {
	case c := <-p.idle:
		return c, nil
	default:
	}
	select {
	case c := <-p.idle:
		return c, nil
	case p.slots <- struct{}{}:
		c, err := p.dial(ctx)
		if err != nil {
			<-p.slots
			return nil, err
		}
		return c, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// put returns c; a connection that broke (or a pool already closed) is
// closed instead and its slot freed.
func (p *connPool) put(c *pgconn.PgConn) {
	if c.IsClosed() || c.IsBusy() || p.closed.Load() {
		c.Close(context.Background())
		<-p.slots
		return
	}
	p.idle <- c
	if p.closed.Load() { // closed meanwhile: do not leave it behind
		p.drain()
	}
}

// close closes the idle connections; ones in use close when put back.
func (p *connPool) close() {
	p.closed.Store(true)
	p.drain()
}

func (p *connPool) drain() {
	for {
		select {
		case c := <-p.idle:
			c.Close(context.Background())
			<-p.slots
		default:
			return
		}
	}
}

// dial connects with a config built from our fields only: ParseConfig must
// create it and reads PG* environment variables, so every field the
// environment could set is overwritten.
func (p *connPool) dial(ctx context.Context) (*pgconn.PgConn, error) {
	host, portStr, err := net.SplitHostPort(p.addr)
	if err != nil {
		return nil, fmt.Errorf("bad address %q: %w", p.addr, err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("bad port in address %q: %w", p.addr, err)
	}
	cc, err := pgconn.ParseConfig("sslmode=disable")
	if err != nil {
		return nil, err
	}
	cc.Host, cc.Port = host, uint16(port)
	cc.User, cc.Password, cc.Database = p.user, p.password, p.dbname
	cc.TLSConfig, cc.Fallbacks = nil, nil
	cc.ValidateConnect, cc.AfterConnect = nil, nil
	cc.RuntimeParams = map[string]string{"application_name": "pgrouter-directory"}
	if d, ok := ctx.Deadline(); ok && time.Until(d) > 0 {
		cc.ConnectTimeout = time.Until(d)
	}
	return pgconn.ConnectConfig(ctx, cc)
}

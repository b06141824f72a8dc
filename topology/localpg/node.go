package localpg

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Node is one PostgreSQL server of the cluster.
type Node struct {
	Name    string // "shard0-primary", "shard0-replica1", …
	Shard   int    // index of the shard it was started in
	Replica bool   // started as a streaming replica (Promote does not change it)
	Host    string // always "127.0.0.1"
	Port    int
	Dir     string // node directory: Unix socket and log live here
	DataDir string // PGDATA
	LogFile string // server log (stderr of the postmaster)

	user, password string
	env            *clusterEnv
	upstream       *Node // the primary a replica streams from; nil for primaries

	mu   sync.Mutex
	proc *serverProc // nil while stopped
}

// Addr is "127.0.0.1:PORT".
func (n *Node) Addr() string { return net.JoinHostPort(n.Host, strconv.Itoa(n.Port)) }

// DSN is a URL connection string for database db as the superuser.
func (n *Node) DSN(db string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(n.user, n.password),
		Host:     n.Addr(),
		Path:     "/" + db,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// localDSN reaches the node over its Unix socket, where login is trusted:
// readiness checks and setup need no password (and skip SCRAM's cost).
func (n *Node) localDSN() string {
	return fmt.Sprintf("host=%s port=%d user=%s dbname=postgres sslmode=disable", n.Dir, n.Port, n.user)
}

// execLocal runs one statement over the Unix socket.
func (n *Node) execLocal(ctx context.Context, sql string) error {
	conn, err := pgconn.Connect(ctx, n.localDSN())
	if err != nil {
		return fmt.Errorf("localpg: connect %s: %w", n.Name, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, sql).ReadAll(); err != nil {
		return fmt.Errorf("localpg: %s: %w", n.Name, err)
	}
	return nil
}

// String names the node and its address, for logs and test failures.
func (n *Node) String() string { return n.Name + "@" + n.Addr() }

// Connect opens a pgx connection to database db as the superuser.
func (n *Node) Connect(ctx context.Context, db string) (*pgx.Conn, error) {
	conn, err := pgx.Connect(ctx, n.DSN(db))
	if err != nil {
		return nil, fmt.Errorf("localpg: connect %s: %w", n, err)
	}
	return conn, nil
}

// Exec runs one statement on database "postgres" over a fresh connection.
func (n *Node) Exec(ctx context.Context, sql string, args ...any) error {
	conn, err := n.Connect(ctx, "postgres")
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		return fmt.Errorf("localpg: %s: %w", n, err)
	}
	return nil
}

// QueryRow runs a single-row query on database "postgres" over a fresh
// connection when Scan is called.
func (n *Node) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return nodeRow{n: n, ctx: ctx, sql: sql, args: args}
}

// queryRowLocal is QueryRow over the Unix socket (no password), for the
// launcher's own checks: they must not depend on the password having
// replicated yet.
func (n *Node) queryRowLocal(ctx context.Context, sql string, args ...any) pgx.Row {
	return nodeRow{n: n, ctx: ctx, sql: sql, args: args, local: true}
}

type nodeRow struct {
	n     *Node
	ctx   context.Context
	sql   string
	args  []any
	local bool
}

func (r nodeRow) Scan(dest ...any) error {
	dsn := r.n.DSN("postgres")
	if r.local {
		dsn = r.n.localDSN()
	}
	conn, err := pgx.Connect(r.ctx, dsn)
	if err != nil {
		return fmt.Errorf("localpg: connect %s: %w", r.n, err)
	}
	defer conn.Close(context.WithoutCancel(r.ctx))
	if err := conn.QueryRow(r.ctx, r.sql, r.args...).Scan(dest...); err != nil {
		return fmt.Errorf("localpg: %s: %w", r.n, err)
	}
	return nil
}

// InRecovery reports pg_is_in_recovery(): true on a replica.
func (n *Node) InRecovery(ctx context.Context) (bool, error) {
	var rec bool
	err := n.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&rec)
	return rec, err
}

// Promote turns a replica into a primary (pg_promote) and waits until it
// has left recovery.
func (n *Node) Promote(ctx context.Context) error {
	var ok bool
	if err := n.QueryRow(ctx, "SELECT pg_promote(true, 60)").Scan(&ok); err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("localpg: %s: pg_promote did not finish within 60s\n%s", n, fileTail(n.LogFile, 20))
	}
	return poll(ctx, 20*time.Millisecond, func() (bool, error) {
		rec, err := n.InRecovery(ctx)
		return !rec, err
	})
}

// PauseReplay stops WAL replay on a replica (pg_wal_replay_pause): the
// replica keeps receiving WAL but applies no record written after this
// returns, until ResumeReplay.
func (n *Node) PauseReplay(ctx context.Context) error {
	return n.Exec(ctx, "SELECT pg_wal_replay_pause()")
}

// ResumeReplay restarts WAL replay (pg_wal_replay_resume).
func (n *Node) ResumeReplay(ctx context.Context) error {
	return n.Exec(ctx, "SELECT pg_wal_replay_resume()")
}

// poll calls check every interval until it reports done, returns an
// error, or ctx ends.
func poll(ctx context.Context, interval time.Duration, check func() (bool, error)) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		done, err := check()
		if err != nil || done {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("localpg: %w", ctx.Err())
		case <-t.C:
		}
	}
}

// StartOne starts one primary (no replicas) and connects to its database
// "postgres": the setup of tests that only need a real Postgres to compare
// with. Close the connection, then the cluster.
func StartOne(ctx context.Context) (*Cluster, *pgx.Conn, error) {
	c, err := Start(ctx, Options{Shards: 1})
	if err != nil {
		return nil, nil, fmt.Errorf("start postgres: %w", err)
	}
	conn, err := c.Shards[0].Primary.Connect(ctx, "postgres")
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	return c, conn, nil
}

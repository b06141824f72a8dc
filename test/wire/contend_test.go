package wire

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgrouter/pgrouter/proxy"
)

// The contended mode plays a script on a pgrouter whose pools hold one
// backend each, while other clients keep asking for a backend: before each
// of the script's sends, every contender that is idle sends a query, and
// the harness waits until each one is either answered (the backend was
// free) or queued on a pool (the script's client holds it). So whenever the
// script's client gives its backend back, even for a moment between two of
// its batches, another client takes it: a session that lets go of a
// backend still holding its portal, implicit transaction or batch shows up
// deterministically, not as a rare race.

// contenders want the primary and a replica, whichever the script uses.
var contenderQueries = []string{
	"/* pgrouter: role=primary */ select 'contender'",
	"/* pgrouter: role=replica */ select 'contender'",
}

// contender is one other client of the contended mode.
type contender struct {
	conn *pgconn.PgConn
	sql  string
	done chan error // the running query's outcome; nil while idle
}

type contention struct {
	inst *proxy.Instance
	cs   []*contender
}

func contend(ctx context.Context, inst *proxy.Instance) (*contention, error) {
	c := &contention{inst: inst}
	for _, q := range contenderQueries {
		conn, err := pgconn.Connect(ctx, proxyDSN(inst.Addr))
		if err != nil {
			c.close()
			return nil, err
		}
		c.cs = append(c.cs, &contender{conn: conn, sql: q})
	}
	return c, nil
}

// press starts a query on every idle contender and waits until each is
// answered or queued on a pool. The error is a contender's failure.
func (c *contention) press(ctx context.Context) error {
	for _, k := range c.cs {
		if k.done == nil {
			k.done = make(chan error, 1)
			go func(k *contender, done chan error) {
				_, err := k.conn.Exec(ctx, k.sql).ReadAll()
				done <- err
			}(k, k.done)
		}
	}
	deadline := time.Now().Add(refTimeout)
	for {
		pending := 0
		for _, k := range c.cs {
			select {
			case err := <-k.done:
				k.done = nil
				if err != nil {
					return fmt.Errorf("contender %q: %w", k.sql, err)
				}
			default:
				if k.done != nil {
					pending++
				}
			}
		}
		if pending == 0 || waiting(c.inst) >= pending {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d contender(s) neither answered nor queued within %s", pending, refTimeout)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// settle waits for the queries still queued (the script's client has left)
// and closes the contenders.
func (c *contention) settle(ctx context.Context) error {
	var first error
	for _, k := range c.cs {
		if k.done == nil {
			continue
		}
		select {
		case err := <-k.done:
			if err != nil && first == nil {
				first = fmt.Errorf("contender %q: %w", k.sql, err)
			}
		case <-time.After(refTimeout):
			if first == nil {
				first = fmt.Errorf("contender %q got no backend within %s after the script's client left", k.sql, refTimeout)
			}
		}
		k.done = nil
	}
	c.close()
	return first
}

func (c *contention) close() {
	for _, k := range c.cs {
		k.conn.Close(context.Background())
	}
}

// waiting counts the sessions queued for a backend of inst.
func waiting(inst *proxy.Instance) (n int) {
	for _, node := range inst.Topology.Snapshot().Nodes() {
		for _, p := range node.Pools() {
			n += p.Pool.Stats().Waiting
		}
	}
	return n
}

// playContended plays s through a fresh pgrouter of contendedConfig with
// contenders pressing before each send; err is a failure of the mode itself
// (a contender starved, a backend held after everyone left).
func playContended(ctx context.Context, t *testing.T, p profile, s *script) (transcript, error) {
	inst, err := proxy.Start(ctx, contendedConfig, discardLog())
	if err != nil {
		t.Fatal(err)
	}
	defer closeInstance(inst)
	if err := resetSchema(ctx, p.schema); err != nil {
		return nil, fmt.Errorf("reset schema %s: %w", p.schema, err)
	}
	c, err := contend(ctx, inst)
	if err != nil {
		return nil, err
	}
	tr := play(ctx, proxyDSN(inst.Addr), p, s, proxyTimeout, func() error { return c.press(ctx) })
	if err := c.settle(ctx); err != nil {
		return tr, err
	}
	if held := heldBackends("contended instance", inst, 0); held != "" {
		return tr, fmt.Errorf("%s", held)
	}
	return tr, nil
}

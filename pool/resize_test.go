package pool

import (
	"strconv"
	"testing"
	"time"
)

// TestSetSizeShrinksAndGrows: lowering the size closes idle backends at
// once and busy ones on release, a waiter gets no new dial while the pool is
// over the new size, and raising it lets the waiter dial.
func TestSetSizeShrinksAndGrows(t *testing.T) {
	ctx := testCtx(t)
	cfg := testConfig("resize")
	cfg.Size = 4
	p := newTestPool(t, cfg)
	conns := make([]*Conn, 4)
	for i := range conns {
		conns[i] = mustAcquire(t, ctx, p)
	}
	p.Release(conns[0])
	p.Release(conns[1])
	p.SetSize(1) // 2 idle closed now; 2 busy stay until released
	if st := p.Stats(); st.Total != 2 || st.Idle != 0 || st.Active != 2 {
		t.Fatalf("after SetSize(1): %+v, want total 2 (both busy), idle 0", st)
	}
	got := make(chan *Conn, 1)
	go func() {
		c, err := p.Acquire(ctx)
		if err != nil {
			t.Errorf("Acquire: %v", err)
		}
		got <- c
	}()
	eventually(t, 10*time.Second, "a queued Acquire", func() bool { return p.Stats().Waiting == 1 })
	p.Release(conns[2]) // over the size: closed, not handed to the waiter
	// Its slot counts until the server has closed it (Pool.retire).
	eventually(t, 10*time.Second, "the released backend gone", func() bool { return p.Stats().Total == 1 })
	if st := p.Stats(); st.Waiting != 1 {
		t.Fatalf("after a release over the size: %+v, want the waiter still queued", st)
	}
	p.Release(conns[3]) // at the size: handed to the waiter
	c := <-got
	if st := p.Stats(); st.Total != 1 || st.Active != 1 {
		t.Fatalf("waiter served at size 1: %+v", st)
	}
	// Growing lets a queued Acquire dial at once.
	go func() {
		c, err := p.Acquire(ctx)
		if err != nil {
			t.Errorf("Acquire: %v", err)
		}
		got <- c
	}()
	eventually(t, 10*time.Second, "a queued Acquire", func() bool { return p.Stats().Waiting == 1 })
	p.SetSize(2)
	c2 := <-got
	if st := p.Stats(); st.Total != 2 || st.Active != 2 || p.Size() != 2 {
		t.Fatalf("after SetSize(2): %+v size %d", st, p.Size())
	}
	p.Release(c)
	p.Release(c2)
}

// TestShrinkNeverOverlapsOnTheServer: a slot freed by a shrink is handed to
// a waiter only once the server has let its backend go, so Postgres itself
// (pg_stat_activity, what max_connections and a fleet's connection budget
// count) never sees more of the pool's backends than its size at that
// moment — checked right after each release over the size, under waiters.
func TestShrinkNeverOverlapsOnTheServer(t *testing.T) {
	ctx := testCtx(t)
	cfg := testConfig("shrinkgone")
	cfg.Size = 4
	p := newTestPool(t, cfg)
	spy := superConn(t, ctx)
	onServer := func() int {
		n, _ := strconv.Atoi(superScalar(t, ctx, spy, "select count(*) from pg_stat_activity where application_name = 'shrinkgone'"))
		return n
	}
	for round := range 5 {
		conns := make([]*Conn, 4)
		for i := range conns {
			conns[i] = mustAcquire(t, ctx, p)
		}
		p.SetSize(2)
		got := make(chan *Conn, 2)
		for range 2 { // waiters that would dial into a freed slot at once
			go func() {
				c, err := p.Acquire(ctx)
				if err != nil {
					t.Errorf("Acquire: %v", err)
				}
				got <- c
			}()
		}
		eventually(t, 10*time.Second, "two queued Acquires", func() bool { return p.Stats().Waiting == 2 })
		for _, c := range conns {
			p.Release(c)
			// The pool's count first: it only falls in this phase (a freed
			// slot goes to a waiter unchanged), so the server's later count
			// must not exceed it.
			total := p.Stats().Total
			if n := onServer(); n > total || n > 4 {
				t.Fatalf("round %d: the server sees %d backends, the pool counted %d just before", round, n, total)
			}
		}
		a, b := <-got, <-got
		if n := onServer(); n > 2 {
			t.Fatalf("round %d: %d backends on the server at size 2", round, n)
		}
		p.Release(a)
		p.Release(b)
		p.SetSize(4)
	}
}

package pool

import (
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
	if st := p.Stats(); st.Total != 1 || st.Waiting != 1 {
		t.Fatalf("after a release over the size: %+v, want total 1 and the waiter still queued", st)
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

package pool

import (
	"context"
	"time"
)

// reapInterval is how often the reaper looks at the idle stack: often enough
// that conns live at most ~1.5× IdleTimeout/MaxLifetime, rarely enough to cost
// nothing. 0 means no reaper is needed.
func reapInterval(cfg Config, minIdle int) time.Duration {
	var every time.Duration
	pick := func(d time.Duration) {
		if d > 0 && (every == 0 || d < every) {
			every = d
		}
	}
	pick(cfg.IdleTimeout / 2)
	pick(cfg.MaxLifetime / 2)
	if minIdle > 0 {
		pick(time.Second) // retry top-ups after a failed dial
	}
	if every == 0 {
		return 0
	}
	return min(max(every, 10*time.Millisecond), 30*time.Second)
}

// reap runs until ctx ends (Close). It tops up first so that MinIdle conns
// exist soon after New.
func (p *Pool) reap(ctx context.Context, interval time.Duration) {
	defer close(p.reaped)
	t := time.NewTicker(interval)
	defer t.Stop()
	var victims []*Conn
	for {
		victims = p.reapOnce(ctx, victims[:0])
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// reapOnce closes expired idle conns and dials up to MinIdle. It returns the
// victims slice for reuse.
func (p *Pool) reapOnce(ctx context.Context, victims []*Conn) []*Conn {
	now := time.Now()
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return victims
	}
	kept := p.idle[:0]
	for _, c := range p.idle { // bottom first: idle longest first
		idleTooLong := p.cfg.IdleTimeout > 0 && now.Sub(c.LastUsed) > p.cfg.IdleTimeout &&
			p.total-len(victims) > p.minIdle
		tooOld := p.cfg.MaxLifetime > 0 && now.Sub(c.CreatedAt) > p.cfg.MaxLifetime
		if idleTooLong || tooOld {
			if tooOld {
				c.closeReason = "max_lifetime"
			} else {
				c.closeReason = "idle_timeout"
			}
			victims = append(victims, c)
			p.closedN++
			continue
		}
		kept = append(kept, c)
	}
	clear(p.idle[len(kept):])
	p.idle = kept
	need := 0
	if p.waitq.len() == 0 {
		need = max(min(p.minIdle, p.size)-p.total, 0) // SetSize may have lowered size
		p.total += need                               // reserve the slots before dialing
	}
	p.mu.Unlock()
	for i, c := range victims {
		p.retireOne(c, c.closeReason) // its slot frees once it is gone
		victims[i] = nil
	}
	p.topUp(ctx, need)
	return victims
}

// topUp dials n conns into slots already reserved, adding them to the idle
// stack (or to a waiter that arrived meanwhile). It stops at the first failure.
func (p *Pool) topUp(ctx context.Context, n int) {
	for ; n > 0; n-- {
		c, err := p.dial(ctx)
		p.mu.Lock()
		if err != nil {
			for ; n > 0; n-- { // this slot and the ones not yet dialed
				p.freeSlotLocked() // a waiter inherits it and dials, or the pool shrinks
			}
			p.mu.Unlock()
			return
		}
		p.opened++
		if p.closed {
			p.total--
			p.closedN++
			p.mu.Unlock()
			p.closeConn(c, "pool closed")
			continue
		}
		c.LastUsed = time.Now()
		if w := p.waitq.pop(); w != nil {
			p.active++
			c.checkedOut = true
			p.grantLocked(w, grant{kind: grantConn, c: c})
		} else {
			p.idle = append(p.idle, c)
		}
		p.mu.Unlock()
	}
}

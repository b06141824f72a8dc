package pool

import (
	"context"
	"fmt"
	"time"
)

// grantKind says what a waiter was handed when it reached the head of the queue.
type grantKind uint8

const (
	grantConn   grantKind = iota + 1 // a released conn, already counted as active
	grantDial                        // a reserved slot: the waiter dials its own conn
	grantClosed                      // the pool was closed
)

type grant struct {
	kind grantKind
	c    *Conn
}

// waiter is one queued Acquire. Waiters are recycled through Pool.waiters, so
// the channel and timer are allocated once per waiter, not once per wait.
type waiter struct {
	ch     chan grant // capacity 1: the granter never blocks
	timer  *time.Timer
	enq    time.Time
	waited time.Duration // set under the pool lock when the waiter leaves the queue
}

// grantLocked hands g to w, which the caller has just popped off the queue.
func (p *Pool) grantLocked(w *waiter, g grant) {
	w.waited = time.Since(w.enq)
	p.waitCount++
	p.waitTime += w.waited
	w.ch <- g
}

// wait blocks until w is granted something, ctx ends or AcquireTimeout passes.
func (p *Pool) wait(ctx context.Context, w *waiter) (*Conn, error) {
	var timeout <-chan time.Time
	if d := p.cfg.AcquireTimeout; d > 0 {
		if w.timer == nil {
			w.timer = time.NewTimer(d)
		} else {
			w.timer.Reset(d)
		}
		timeout = w.timer.C
	}
	select {
	case g := <-w.ch:
		return p.finishWait(ctx, w, g)
	case <-ctx.Done():
		return p.abandon(ctx, w, false)
	case <-timeout:
		return p.abandon(ctx, w, true)
	}
}

// finishWait turns a grant into Acquire's result and recycles w.
func (p *Pool) finishWait(ctx context.Context, w *waiter, g grant) (*Conn, error) {
	p.recycle(w)
	switch g.kind {
	case grantConn:
		return g.c, nil
	case grantDial:
		return p.dialSlot(ctx)
	default:
		return nil, p.errClosed()
	}
}

// abandon leaves the queue after a timeout or cancellation. If a grant raced
// in first, a conn is kept on timeout (the work can proceed) but given back on
// cancellation, and a dial slot is passed on to the next waiter.
func (p *Pool) abandon(ctx context.Context, w *waiter, timedOut bool) (*Conn, error) {
	var cause error
	if timedOut {
		cause = p.errTimeout()
	} else {
		cause = fmt.Errorf("pool %s: waiting for a backend connection: %w", p.cfg.Name, ctx.Err())
	}
	p.mu.Lock()
	if p.waitq.remove(w) {
		w.waited = time.Since(w.enq)
		p.waitCount++
		p.waitTime += w.waited
		if timedOut {
			p.timeouts++
		}
		p.mu.Unlock()
		p.recycle(w)
		return nil, cause
	}
	p.mu.Unlock()
	// Not in the queue any more: the grant was sent under the lock we just took.
	g := <-w.ch
	switch g.kind {
	case grantConn:
		if timedOut {
			p.recycle(w)
			return g.c, nil
		}
		p.Release(g.c)
	case grantDial:
		p.mu.Lock()
		p.freeSlotLocked()
		p.mu.Unlock()
	default:
		cause = p.errClosed()
	}
	p.recycle(w)
	return nil, cause
}

// recycle reports the wait to OnWait and returns w for reuse. w must be out of
// the queue with an empty channel.
func (p *Pool) recycle(w *waiter) {
	if w.timer != nil {
		w.timer.Stop()
	}
	if p.cfg.OnWait != nil {
		p.cfg.OnWait(w.waited)
	}
	p.waiters.Put(w)
}

// waitQueue is a FIFO ring of waiters. Removal from the middle (timeouts,
// cancellations) shifts the tail, which is fine because it is rare.
type waitQueue struct {
	buf  []*waiter
	head int
	n    int
}

func (q *waitQueue) len() int { return q.n }

func (q *waitQueue) push(w *waiter) {
	if q.n == len(q.buf) {
		grown := make([]*waiter, max(2*len(q.buf), 8))
		for i := 0; i < q.n; i++ {
			grown[i] = q.buf[(q.head+i)%len(q.buf)]
		}
		q.buf, q.head = grown, 0
	}
	q.buf[(q.head+q.n)%len(q.buf)] = w
	q.n++
}

func (q *waitQueue) front() *waiter {
	if q.n == 0 {
		return nil
	}
	return q.buf[q.head]
}

func (q *waitQueue) pop() *waiter {
	if q.n == 0 {
		return nil
	}
	w := q.buf[q.head]
	q.buf[q.head] = nil
	q.head = (q.head + 1) % len(q.buf)
	q.n--
	return w
}

// remove deletes w wherever it is, keeping the order of the others.
func (q *waitQueue) remove(w *waiter) bool {
	size := len(q.buf)
	for i := 0; i < q.n; i++ {
		if q.buf[(q.head+i)%size] != w {
			continue
		}
		for j := i; j < q.n-1; j++ {
			q.buf[(q.head+j)%size] = q.buf[(q.head+j+1)%size]
		}
		q.buf[(q.head+q.n-1)%size] = nil
		q.n--
		return true
	}
	return false
}

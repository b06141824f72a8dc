package pool

// SetSize changes how many backends the pool may hold open, at runtime: the
// fleet's connection budget moves a member's share when members come and
// go. Shrinking closes idle backends beyond n at once (idle longest first)
// and checked-out ones as they are released; no Acquire dials while the pool
// is at or over n, so the pool never exceeds n once those are back. Growing
// lets queued waiters dial into the new slots. n may be 0 (every Acquire
// waits); a closed pool ignores it.
func (p *Pool) SetSize(n int) {
	n = max(n, 0)
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.size = n
	k := 0
	for p.total-k > n && k < len(p.idle) {
		k++
	}
	victims := make([]*Conn, k)
	copy(victims, p.idle[:k])
	rest := copy(p.idle, p.idle[k:])
	clear(p.idle[rest:])
	p.idle = p.idle[:rest]
	p.closedN += uint64(k)
	for p.total < n {
		w := p.waitq.pop()
		if w == nil {
			break
		}
		p.total++
		p.grantLocked(w, grant{kind: grantDial})
	}
	p.noteIdleLocked()
	p.mu.Unlock()
	p.retire("pool size lowered", victims...)
}

// Size is the pool's current capacity (Config.Size unless SetSize changed it).
func (p *Pool) Size() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.size
}

package proxy

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pgrouter/pgrouter/pgwire"
)

// pauser holds new transactions while a database (or everything) is
// PAUSEd from the admin console; running transactions finish. Waiters block
// on resumeCh, which every RESUME closes and replaces: one broadcast wakes
// them all, and each re-checks whether its own database is still paused.
type pauser struct {
	mu       sync.Mutex
	all      bool
	dbs      map[string]bool
	resumeCh chan struct{}

	any     atomic.Bool  // something is paused: lets the hot path skip the mutex
	waiting atomic.Int64 // clients blocked in waitResumed (metrics)
}

// paused reports whether db is paused, and the channel that the next RESUME closes.
func (p *pauser) paused(db string) (bool, chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.resumeCh == nil {
		p.resumeCh = make(chan struct{})
	}
	return p.all || p.dbs[db], p.resumeCh
}

func (p *pauser) set(db string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.any.Store(true)
	if db == "" {
		p.all = true
		return
	}
	if p.dbs == nil {
		p.dbs = map[string]bool{}
	}
	p.dbs[db] = true
}

// pause marks db ("" = every database) paused, then waits until no session
// of it holds a backend, or until timeout. It returns how many sessions
// still held one at the end (0: fully paused).
func (p *pauser) pause(db string, srv *Server, timeout time.Duration) int {
	p.set(db)
	deadline := time.Now().Add(timeout)
	for {
		busy := 0
		for _, s := range srv.Sessions() {
			if (db == "" || s.dbName == db) && s.running.Load() != nil {
				busy++
			}
		}
		if busy == 0 || !time.Now().Before(deadline) {
			return busy
		}
		// Polling: the release path is the session's hot path, and PAUSE is
		// rare, so the cost belongs here rather than a signal on every release.
		time.Sleep(10 * time.Millisecond)
	}
}

// resume lifts the pause of db ("" = everything, including per-database pauses).
func (p *pauser) resume(db string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if db == "" {
		p.all, p.dbs = false, nil
	} else {
		delete(p.dbs, db)
	}
	p.any.Store(p.all || len(p.dbs) > 0)
	if p.resumeCh != nil {
		close(p.resumeCh)
	}
	p.resumeCh = make(chan struct{})
}

// state lists what is paused (SHOW PAUSED).
func (p *pauser) state() (all bool, dbs []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for db := range p.dbs {
		dbs = append(dbs, db)
	}
	return p.all, dbs
}

// waitResumed blocks a new transaction of db while it is paused, up to
// timeout (pool.acquire_timeout); past it the client gets 53300, like any
// other wait for a backend.
func (s *Server) waitResumed(db string, timeout time.Duration) error {
	if !s.pause.any.Load() {
		return nil // the hot path: one atomic load
	}
	on, ch := s.pause.paused(db)
	if !on {
		return nil
	}
	s.pause.waiting.Add(1)
	defer s.pause.waiting.Add(-1)
	var expired <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expired = t.C
	}
	for on {
		select {
		case <-ch:
		case <-expired:
			return pgwire.Error(pgwire.TooManyConnections, fmt.Sprintf("database %q is paused by an administrator and stayed paused for %s (pool.acquire_timeout)", db, timeout),
				"retry after RESUME")
		}
		on, ch = s.pause.paused(db)
	}
	return nil
}

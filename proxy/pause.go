package proxy

import (
	"fmt"
	"sync"
	"time"
)

// pauser holds new transactions while a database (or everything) is
// paused from the admin console; running transactions finish.
type pauser struct {
	mu       sync.Mutex
	all      bool
	dbs      map[string]bool
	resumeCh chan struct{} // closed and replaced on every RESUME
}

func (p *pauser) paused(db string) (bool, chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.resumeCh == nil {
		p.resumeCh = make(chan struct{})
	}
	return p.all || p.dbs[db], p.resumeCh
}

// pause marks db ("" = all) paused, then waits until no session of it holds
// a backend, or timeout.
func (p *pauser) pause(db string, srv *Server, timeout time.Duration) error {
	p.mu.Lock()
	if db == "" {
		p.all = true
	} else {
		if p.dbs == nil {
			p.dbs = map[string]bool{}
		}
		p.dbs[db] = true
	}
	p.mu.Unlock()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		busy := 0
		for _, s := range srv.Sessions() {
			if (db == "" || s.dbName == db) && s.running.Load() != nil {
				busy++
			}
		}
		if busy == 0 {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return pgErr("57014", fmt.Sprintf("paused, but transactions were still running after %s", timeout), "they finish on their own; RESUME to release waiting clients")
}

func (p *pauser) resume(db string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if db == "" {
		p.all, p.dbs = false, nil
	} else {
		delete(p.dbs, db)
	}
	if p.resumeCh != nil {
		close(p.resumeCh)
	}
	p.resumeCh = make(chan struct{})
}

// waitResumed blocks a new transaction of db while it is paused, up to timeout (then 53300).
func (s *Server) waitResumed(db string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		on, ch := s.pause.paused(db)
		if !on {
			return nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return pgErr("53300", fmt.Sprintf("database %q is paused by an administrator", db), "retry after RESUME")
		}
		select {
		case <-ch:
		case <-time.After(left):
		}
	}
}

package fleet

import (
	"io"
	"net"
	"sync"
)

// relay forwards TCP connections from a loopback port to target (etcd's
// client port), so that one member can be cut off from etcd alone. Cut, it
// drops its connections and holds new ones open without forwarding a byte:
// requests hang until their deadlines, as across a partition. Heal drops
// the held ones (the client dials again at once) and forwards again.
type relay struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]struct{} // both ends of every forwarded or held connection
}

func startRelay(target string) (*relay, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &relay{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	go r.serve()
	return r, nil
}

func (r *relay) addr() string { return r.ln.Addr().String() }

func (r *relay) serve() {
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return // closed
		}
		go r.handle(c)
	}
}

func (r *relay) handle(c net.Conn) {
	defer r.drop(c)
	r.mu.Lock()
	cut := r.cut
	r.conns[c] = struct{}{}
	r.mu.Unlock()
	if cut {
		io.Copy(io.Discard, c) // until Heal or Close drops it
		return
	}
	u, err := net.Dial("tcp", r.target)
	if err != nil {
		return
	}
	defer r.drop(u)
	r.mu.Lock()
	if r.cut { // cut while dialing
		r.mu.Unlock()
		return
	}
	r.conns[u] = struct{}{}
	r.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { io.Copy(u, c); done <- struct{}{} }()
	go func() { io.Copy(c, u); done <- struct{}{} }()
	<-done // one direction ended: end both
}

func (r *relay) drop(c net.Conn) {
	r.mu.Lock()
	delete(r.conns, c)
	r.mu.Unlock()
	c.Close()
}

// setCut cuts (true) or heals (false) the relay; either way the current
// connections are dropped.
func (r *relay) setCut(cut bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cut = cut
	for c := range r.conns {
		c.Close()
	}
}

func (r *relay) close() {
	r.ln.Close()
	r.setCut(true)
}

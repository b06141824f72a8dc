package main

import (
	"iter"
	"net"
	"syscall"
)

// serveCoro is serveEpoll with each client's forwarding written as
// straight-line code in a coroutine of its own (iter.Pull): the loop
// resumes it when one of its sockets is readable, and it yields back
// when a read would block. What that adds to the bare loop is the price
// of keeping blocking-style session code on an event loop.
func serveCoro(ln *net.TCPListener, backend string) error {
	l, err := openLoop(ln, backend)
	if err != nil {
		return err
	}
	type session struct {
		ready int // the fd the loop resumed it for
		next  func() (struct{}, bool)
	}
	sessions := map[int]*session{}
	peer := map[int]int{}
	for {
		events, err := l.wait()
		if err != nil {
			return err
		}
		for _, ev := range events {
			fd := int(ev.Fd)
			if fd == l.lfd {
				l.acceptAll(peer)
				for cfd, bfd := range peer {
					if sessions[cfd] != nil {
						continue
					}
					s := &session{}
					s.next, _ = iter.Pull(func(yield func(struct{}) bool) {
						buf := make([]byte, 16<<10)
						for {
							from := s.ready
							to := peer[from]
							if !forward(from, to, buf) {
								syscall.Close(from)
								syscall.Close(to)
								return
							}
							if !yield(struct{}{}) {
								return
							}
						}
					})
					sessions[cfd], sessions[bfd] = s, s
				}
				continue
			}
			s := sessions[fd]
			if s == nil {
				continue
			}
			s.ready = fd
			if _, ok := s.next(); !ok {
				other := peer[fd]
				delete(sessions, fd)
				delete(sessions, other)
				delete(peer, fd)
				delete(peer, other)
			}
		}
	}
}

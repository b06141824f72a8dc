package main

import (
	"fmt"
	"iter"
	"net"
	"runtime"
	"syscall"
	"unsafe"
)

// serveCoro is serveEpoll with each client's forwarding written as
// straight-line code in a coroutine of its own (iter.Pull): the loop
// resumes it when one of its sockets is readable, and it yields back
// when a read would block. What that adds to the bare loop is the price
// of keeping blocking-style session code on an event loop.
func serveCoro(ln *net.TCPListener, backend string) error {
	runtime.LockOSThread()
	lf, err := ln.File()
	if err != nil {
		return err
	}
	lfd := int(lf.Fd())
	if err := syscall.SetNonblock(lfd, true); err != nil {
		return err
	}
	ra, err := net.ResolveTCPAddr("tcp4", backend)
	if err != nil {
		return err
	}
	sa := &syscall.SockaddrInet4{Port: ra.Port}
	copy(sa.Addr[:], ra.IP.To4())
	ep, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return err
	}
	watch := func(fd int) error {
		return syscall.EpollCtl(ep, syscall.EPOLL_CTL_ADD, fd, &syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(fd)})
	}
	if err := watch(lfd); err != nil {
		return err
	}
	type session struct {
		ready int // the fd the loop resumed it for
		next  func() (struct{}, bool)
	}
	sessions := map[int]*session{}
	peer := map[int]int{}
	events := make([]syscall.EpollEvent, 256)
	for {
		r, _, e := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, uintptr(ep), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), ^uintptr(0), 0, 0)
		if e == syscall.EINTR {
			continue
		}
		if e != 0 {
			return fmt.Errorf("epoll_pwait: %w", e)
		}
		for _, ev := range events[:int(r)] {
			fd := int(ev.Fd)
			if fd == lfd {
				before := len(peer)
				acceptAll(lfd, sa, peer, watch)
				if len(peer) == before {
					continue
				}
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

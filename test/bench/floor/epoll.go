package main

import (
	"fmt"
	"net"
	"runtime"
	"syscall"
	"unsafe"
)

// loop is one epoll instance in this OS thread, watching the listener and
// every client and backend socket; the backend address to dial per client.
type loop struct {
	ep, lfd int
	backend *syscall.SockaddrInet4
	events  []syscall.EpollEvent
}

// openLoop locks the goroutine to its thread and sets up the epoll loop.
func openLoop(ln *net.TCPListener, backend string) (*loop, error) {
	runtime.LockOSThread()
	lf, err := ln.File()
	if err != nil {
		return nil, err
	}
	l := &loop{lfd: int(lf.Fd()), events: make([]syscall.EpollEvent, 256)}
	if err := syscall.SetNonblock(l.lfd, true); err != nil {
		return nil, err
	}
	ra, err := net.ResolveTCPAddr("tcp4", backend)
	if err != nil {
		return nil, err
	}
	l.backend = &syscall.SockaddrInet4{Port: ra.Port}
	copy(l.backend.Addr[:], ra.IP.To4())
	if l.ep, err = syscall.EpollCreate1(syscall.EPOLL_CLOEXEC); err != nil {
		return nil, err
	}
	return l, l.watch(l.lfd)
}

func (l *loop) watch(fd int) error {
	return syscall.EpollCtl(l.ep, syscall.EPOLL_CTL_ADD, fd, &syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(fd)})
}

// wait returns the sockets that became readable (raw epoll_pwait: no
// runtime bookkeeping around the block).
func (l *loop) wait() ([]syscall.EpollEvent, error) {
	for {
		r, _, e := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, uintptr(l.ep), uintptr(unsafe.Pointer(&l.events[0])), uintptr(len(l.events)), ^uintptr(0), 0, 0)
		switch e {
		case 0:
			return l.events[:int(r)], nil
		case syscall.EINTR:
		default:
			return nil, fmt.Errorf("epoll_pwait: %w", e)
		}
	}
}

// serveEpoll runs every connection on one epoll loop in this OS thread.
// Reads and writes are raw syscalls on non-blocking sockets; the rare
// partial write is retried at once (tiny pgbench messages never fill a
// loopback socket's buffer).
func serveEpoll(ln *net.TCPListener, backend string) error {
	l, err := openLoop(ln, backend)
	if err != nil {
		return err
	}
	peer := map[int]int{}
	buf := make([]byte, 64<<10)
	for {
		events, err := l.wait()
		if err != nil {
			return err
		}
		for _, ev := range events {
			fd := int(ev.Fd)
			if fd == l.lfd {
				l.acceptAll(peer)
				continue
			}
			if other, ok := peer[fd]; ok && !forward(fd, other, buf) {
				syscall.Close(fd)
				syscall.Close(other)
				delete(peer, fd)
				delete(peer, other)
			}
		}
	}
}

// acceptAll accepts every waiting client and pairs it with a new backend
// connection (a blocking connect: loopback answers at once).
func (l *loop) acceptAll(peer map[int]int) {
	for {
		cfd, _, err := syscall.Accept4(l.lfd, syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
		if err != nil {
			return
		}
		bfd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		if err == nil {
			err = syscall.Connect(bfd, l.backend)
		}
		if err != nil {
			syscall.Close(cfd)
			syscall.Close(bfd)
			continue
		}
		syscall.SetNonblock(bfd, true)
		for _, fd := range []int{cfd, bfd} {
			syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
		}
		peer[cfd], peer[bfd] = bfd, cfd
		l.watch(cfd)
		l.watch(bfd)
	}
}

// forward moves what fd has to other; false when either side is done.
func forward(fd, other int, buf []byte) bool {
	r, _, e := syscall.RawSyscall(syscall.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)))
	switch {
	case e == syscall.EAGAIN:
		return true
	case e != 0 || r == 0:
		return false
	}
	n := int(r)
	for off := 0; off < n; {
		w, _, e := syscall.RawSyscall(syscall.SYS_WRITE, uintptr(other), uintptr(unsafe.Pointer(&buf[off])), uintptr(n-off))
		switch {
		case e == syscall.EAGAIN:
		case e != 0:
			return false
		default:
			off += int(w)
		}
	}
	return true
}

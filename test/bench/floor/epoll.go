package main

import (
	"fmt"
	"net"
	"runtime"
	"syscall"
	"unsafe"
)

// serveEpoll runs every connection on one epoll loop in this OS thread.
// Reads and writes are raw syscalls on non-blocking sockets; the rare
// partial write is retried at once (tiny pgbench messages never fill a
// loopback socket's buffer).
func serveEpoll(ln *net.TCPListener, backend string) error {
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
	peer := map[int]int{}
	events := make([]syscall.EpollEvent, 256)
	buf := make([]byte, 64<<10)
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
				acceptAll(lfd, sa, peer, watch)
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
func acceptAll(lfd int, sa *syscall.SockaddrInet4, peer map[int]int, watch func(int) error) {
	for {
		cfd, _, err := syscall.Accept4(lfd, syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
		if err != nil {
			return
		}
		bfd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		if err == nil {
			err = syscall.Connect(bfd, sa)
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
		watch(cfd)
		watch(bfd)
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

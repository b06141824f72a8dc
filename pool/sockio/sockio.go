// Package sockio makes reads and writes on a proxy's TCP sockets cheaper for
// the Go scheduler.
//
// A net.TCPConn Read or Write is a blocking-style syscall (entersyscall /
// exitsyscall): while it runs, its P is marked "in syscall", and sysmon takes
// such Ps away after 20 µs when goroutines are waiting, waking another OS
// thread to run them (futex wakeups, thread switches) and keeping sysmon
// itself polling every 20 µs (nanosleep). A loopback write does the
// receiver's TCP work inline and often lasts that long, so a busy proxy paid
// that churn on nearly every round trip. The sockets are non-blocking, so the
// syscalls never wait: Wrap issues them as raw syscalls through the
// connection's syscall.RawConn (the goroutine keeps its P, as for any other
// short CPU work) and still parks on the netpoller when the socket is not
// ready, so deadlines, Close and wakeups behave exactly as with net.TCPConn.
package sockio

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"
)

// Wrap returns c with raw-syscall Read and Write when c is a plain TCP
// socket; any other conn (TLS, pipes in tests) is returned unchanged. The
// result may be used by one reader and one writer at a time (as a net.Conn
// carrying a protocol stream is); every other method is c's own.
func Wrap(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	s := &conn{TCPConn: tc, rc: rc}
	s.readFn = s.rawRead   // method values bound once: no allocation per call
	s.writeFn = s.rawWrite //
	s.lentFn = s.rawReadLent
	s.awaitFn = s.rawWriteAwait
	return s
}

// conn embeds the TCPConn for every method but Read and Write. The per-call
// state lives in the struct (not in closures) so that I/O does not allocate.
type conn struct {
	*net.TCPConn
	rc syscall.RawConn

	rbuf            []byte
	rn              int
	rerr            syscall.Errno
	wbuf            []byte
	werr            syscall.Errno
	lender          Lender  // ReadLent's buffers
	lent            *[]byte // the buffer ReadLent read into
	readFn, writeFn func(fd uintptr) bool
	lentFn          func(fd uintptr) bool
	wrote           bool // WriteAwait's write is done
	awaitFn         func(fd uintptr) bool
}

// Read reads like net.TCPConn.Read: io.EOF at end of stream, *net.OpError otherwise.
func (s *conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	s.rbuf, s.rn, s.rerr = p, 0, 0
	err := s.rc.Read(s.readFn) // parks on the netpoller while rawRead reports EAGAIN
	s.rbuf = nil
	switch {
	case err != nil:
		return 0, err
	case s.rerr != 0:
		return 0, s.opError("read", s.rerr)
	case s.rn == 0:
		return 0, io.EOF
	}
	return s.rn, nil
}

// rawRead does one read(2); false means "not ready, wait for readability".
func (s *conn) rawRead(fd uintptr) bool {
	for {
		n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&s.rbuf[0])), uintptr(len(s.rbuf)))
		switch e {
		case 0:
			s.rn = int(n)
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		default:
			s.rerr = e
			return true
		}
	}
}

// Write writes all of p like net.TCPConn.Write, waiting for buffer space as needed.
func (s *conn) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	s.wbuf, s.werr = p, 0
	err := s.rc.Write(s.writeFn)
	n := len(p) - len(s.wbuf)
	s.wbuf = nil
	switch {
	case err != nil:
		return n, err
	case s.werr != 0:
		return n, s.opError("write", s.werr)
	}
	return n, nil
}

// rawWrite writes what is left of wbuf; false means "buffer full, wait for writability".
func (s *conn) rawWrite(fd uintptr) bool {
	for len(s.wbuf) > 0 {
		n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&s.wbuf[0])), uintptr(len(s.wbuf)))
		switch e {
		case 0:
			s.wbuf = s.wbuf[n:]
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			s.werr = e
			return true
		}
	}
	return true
}

func (s *conn) opError(op string, e syscall.Errno) error {
	return &net.OpError{Op: op, Net: "tcp", Source: s.LocalAddr(), Addr: s.RemoteAddr(), Err: os.NewSyscallError(op, e)}
}

// Lender lends read buffers (*[]byte); a sync.Pool of them is one.
type Lender interface {
	Get() any
	Put(any)
}

// ReadLent reads like Read into a buffer borrowed from l only once the
// socket has data: while the connection waits, the caller holds no buffer,
// so an idle connection costs none. The buffer is returned with the count
// read into it; on error it has gone back to l.
func (s *conn) ReadLent(l Lender) (*[]byte, int, error) {
	s.lender = l
	err := s.rc.Read(s.lentFn) // parks on the netpoller, holding no buffer, while the socket is empty
	bp := s.lent
	s.lender, s.lent, s.rbuf = nil, nil, nil
	switch {
	case err != nil:
	case s.rerr != 0:
		err = s.opError("read", s.rerr)
	case s.rn == 0:
		err = io.EOF
	default:
		return bp, s.rn, nil
	}
	if bp != nil {
		l.Put(bp)
	}
	return nil, 0, err
}

// rawReadLent is rawRead into a buffer borrowed from s.lender, given back
// when the socket turns out to be empty.
func (s *conn) rawReadLent(fd uintptr) bool {
	bp := s.lender.Get().(*[]byte)
	s.rbuf, s.rn, s.rerr = *bp, 0, 0
	if !s.rawRead(fd) {
		s.lender.Put(bp)
		return false
	}
	s.lent = bp
	return true
}

// WriteAwait writes p, then waits until the socket has something to read
// (or an error, a passed read deadline, Close): for a request whose answer
// is read next. A Read issued right after a write nearly always finds the
// socket empty (the peer has not answered yet), so it costs a read(2) that
// fails with EAGAIN before parking; here the write is the first step of the
// wait itself, done after the poller was armed (so an answer arriving at
// once is not missed) and the goroutine parks without that read. The wait's
// own error is left to the Read that follows, which sees it again.
func (s *conn) WriteAwait(p []byte) error {
	s.wbuf, s.werr, s.wrote = p, 0, false
	s.rc.Read(s.awaitFn) // its error (deadline, Close) is the next Read's
	left := s.wbuf
	s.wbuf = nil
	switch {
	case s.werr != 0:
		return s.opError("write", s.werr)
	case !s.wrote || len(left) > 0: // the poller refused at once, or the socket buffer filled up
		_, err := s.Write(left)
		return err
	}
	return nil
}

// rawWriteAwait is WriteAwait's step: first the write, then (once woken)
// report readability.
func (s *conn) rawWriteAwait(fd uintptr) bool {
	if s.wrote {
		return true
	}
	s.wrote = true
	return !s.rawWrite(fd) || s.werr != 0 // a full socket buffer or an error ends the wait
}

package sockio

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"
)

// tcpPair returns a wrapped client end and the plain server end of a loopback connection.
func tcpPair(t *testing.T) (wrapped net.Conn, peer net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	peer = <-accepted
	if peer == nil {
		t.Fatal("accept failed")
	}
	wrapped = Wrap(c)
	if _, ok := wrapped.(*conn); !ok {
		t.Fatalf("Wrap(*net.TCPConn) = %T, want the raw-syscall conn", wrapped)
	}
	t.Cleanup(func() { wrapped.Close(); peer.Close() })
	return wrapped, peer
}

func TestWrapLeavesOtherConnsAlone(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if got := Wrap(a); got != a {
		t.Fatalf("Wrap(pipe) = %T, want the pipe itself", got)
	}
}

func TestReadWriteRoundTrip(t *testing.T) {
	c, peer := tcpPair(t)
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(peer, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("peer read %q, %v", buf, err)
	}
	// The wrapped side blocks (parks on the netpoller) until data arrives.
	go func() {
		time.Sleep(20 * time.Millisecond)
		peer.Write([]byte("pong"))
	}()
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "pong" {
		t.Fatalf("wrapped read %q, %v", buf, err)
	}
	if n, err := c.Read(nil); n != 0 || err != nil {
		t.Fatalf("empty read = %d, %v", n, err)
	}
}

func TestLargeWriteWaitsForBufferSpace(t *testing.T) {
	c, peer := tcpPair(t)
	// Far more than the socket buffers hold: the write must wait for the
	// reader (EAGAIN, then netpoller) and still deliver every byte in order.
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<20) // 16 MiB
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(peer)
		got <- b
	}()
	n, err := c.Write(data)
	if err != nil || n != len(data) {
		t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(data))
	}
	c.(*conn).CloseWrite()
	if b := <-got; !bytes.Equal(b, data) {
		t.Fatalf("peer received %d bytes, not the %d written", len(b), len(data))
	}
}

func TestEOFAndErrorsLikeTCPConn(t *testing.T) {
	c, peer := tcpPair(t)
	peer.Close()
	if _, err := c.Read(make([]byte, 8)); err != io.EOF {
		t.Fatalf("read after peer close: %v, want io.EOF", err)
	}
	// Writing to a closed peer fails eventually (EPIPE / ECONNRESET) as a net.Error.
	var werr error
	for i := 0; i < 100 && werr == nil; i++ {
		_, werr = c.Write([]byte("x"))
		time.Sleep(time.Millisecond)
	}
	var oe *net.OpError
	if !errors.As(werr, &oe) {
		t.Fatalf("write to a closed peer: %v (%T), want *net.OpError", werr, werr)
	}
}

func TestDeadlineAndClose(t *testing.T) {
	c, _ := tcpPair(t)
	c.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	_, err := c.Read(make([]byte, 8))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past deadline: %v, want a timeout", err)
	}
	c.SetReadDeadline(time.Time{})
	done := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 8))
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	c.Close()
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read interrupted by Close: %v, want net.ErrClosed", err)
	}
}

func TestReadWriteDoNotAllocate(t *testing.T) {
	c, peer := tcpPair(t)
	msg := []byte("0123456789")
	buf := make([]byte, len(msg))
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(peer, buf); err != nil {
			t.Fatal(err)
		}
		if _, err := peer.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("a write and a read through the wrapper allocate %.1f times", allocs)
	}
}

// countingLender is a Lender that knows how many buffers are out.
type countingLender struct {
	mu        sync.Mutex
	gets, out int
}

func (l *countingLender) Get() any {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.gets++
	l.out++
	b := make([]byte, 64)
	return &b
}

func (l *countingLender) Put(any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.out--
}

func (l *countingLender) counts() (gets, out int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.gets, l.out
}

func TestReadLentHoldsNoBufferWhileWaiting(t *testing.T) {
	c, peer := tcpPair(t)
	l := &countingLender{}
	type result struct {
		bp  *[]byte
		n   int
		err error
	}
	done := make(chan result, 1)
	go func() {
		bp, n, err := c.(*conn).ReadLent(l)
		done <- result{bp, n, err}
	}()
	// The socket is empty: ReadLent borrows a buffer, finds nothing, gives it back and parks.
	deadline := time.Now().Add(5 * time.Second)
	for gets, _ := l.counts(); gets == 0 && time.Now().Before(deadline); gets, _ = l.counts() {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	if gets, out := l.counts(); gets == 0 || out != 0 {
		t.Fatalf("waiting on an empty socket: %d buffers borrowed, %d still out; want some borrowed, none out", gets, out)
	}
	peer.Write([]byte("hello"))
	r := <-done
	if r.err != nil || string((*r.bp)[:r.n]) != "hello" {
		t.Fatalf("ReadLent = %q, %v", (*r.bp)[:r.n], r.err)
	}
	if _, out := l.counts(); out != 1 {
		t.Fatalf("after a read %d buffers are out, want the one returned", out)
	}
	// At end of stream the buffer goes back and the error is io.EOF.
	l.Put(r.bp)
	peer.Close()
	if bp, _, err := c.(*conn).ReadLent(l); bp != nil || err != io.EOF {
		t.Fatalf("ReadLent at EOF = %v, %v; want nil, io.EOF", bp, err)
	}
	if _, out := l.counts(); out != 0 {
		t.Fatalf("after EOF %d buffers are out", out)
	}
}

func TestWriteAwait(t *testing.T) {
	c, peer := tcpPair(t)
	w := c.(*conn)
	answered := make(chan time.Time, 1)
	go func() {
		buf := make([]byte, 4)
		io.ReadFull(peer, buf)
		time.Sleep(30 * time.Millisecond)
		answered <- time.Now()
		peer.Write([]byte("pong"))
	}()
	if err := w.WriteAwait([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-answered:
	default:
		t.Fatal("WriteAwait returned before the peer answered")
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "pong" {
		t.Fatalf("read after WriteAwait: %q, %v", buf, err)
	}

	// A write larger than the socket buffers finishes as a plain write.
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<20)
	got := make(chan int, 1)
	go func() {
		n, _ := io.CopyN(io.Discard, peer, int64(len(data)))
		got <- int(n)
		peer.Write([]byte("done"))
	}()
	if err := w.WriteAwait(data); err != nil {
		t.Fatal(err)
	}
	if n := <-got; n != len(data) {
		t.Fatalf("peer received %d bytes, want %d", n, len(data))
	}

	// The wait ends at the read deadline; the Read that follows reports it.
	io.ReadFull(c, buf) // "done"
	c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if err := w.WriteAwait([]byte("x")); err != nil {
		t.Fatalf("WriteAwait with a read deadline: %v", err)
	}
	if _, err := c.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read after the wait timed out: %v, want the deadline error", err)
	}
}

// Package faults probes pgrouter as a hostile or unlucky client would, on a
// real cluster: oversized and truncated messages before and after login,
// slow and silent clients, pipelined logins, user enumeration, failed-login
// throttling, file-descriptor exhaustion. Each test asserts its figure
// (error seen, process alive, memory back near its baseline).
package faults

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pgrouter/pgrouter/config"
	"github.com/pgrouter/pgrouter/proxy"
	"github.com/pgrouter/pgrouter/test/testenv"
)

var env *testenv.Env

// maxMessage is the env's limits.max_message_size.
const maxMessage = 64 << 20

func TestMain(m *testing.M) {
	var run func() int
	env, run = testenv.Main(m, testenv.Options{TLS: true, Sections: map[string]string{
		"pool":   "  login_timeout: 2s",
		"limits": fmt.Sprintf("  max_message_size: %d\n  auth_failures: 0", maxMessage),
	}}, nil)
	os.Exit(run())
}

// rawConn is a client speaking the protocol byte by byte.
type rawConn struct {
	net.Conn
	r *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(15 * time.Second))
	return &rawConn{Conn: c, r: bufio.NewReaderSize(c, 4096)}
}

func (r *rawConn) send(t *testing.T, parts ...[]byte) {
	t.Helper()
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	if _, err := r.Write(b); err != nil {
		t.Fatalf("send: %v", err)
	}
}

// msg is one server message; bodies over 1 MiB are read and dropped (n says
// how long it was), so the test's own memory stays out of heap figures.
type msg struct {
	typ  byte
	body []byte
	n    int
}

func (r *rawConn) recv() (msg, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r.r, hdr[:]); err != nil {
		return msg{}, err
	}
	n := int(binary.BigEndian.Uint32(hdr[1:])) - 4
	m := msg{typ: hdr[0], n: n}
	if n > 1<<20 {
		_, err := io.CopyN(io.Discard, r.r, int64(n))
		return m, err
	}
	m.body = make([]byte, n)
	_, err := io.ReadFull(r.r, m.body)
	return m, err
}

func (r *rawConn) mustRecv(t *testing.T) msg {
	t.Helper()
	m, err := r.recv()
	if err != nil {
		t.Fatalf("receive: %v", err)
	}
	return m
}

// authCode is the request code of an 'R' message.
func (m msg) authCode() int {
	if m.typ != 'R' || len(m.body) < 4 {
		return -1
	}
	return int(binary.BigEndian.Uint32(m.body))
}

func (m msg) String() string {
	if m.typ == 'E' {
		return "ErrorResponse " + decodeError(m).Code + " " + decodeError(m).Message
	}
	return fmt.Sprintf("%c(%d bytes)", m.typ, m.n)
}

func decodeError(m msg) *pgproto3.ErrorResponse {
	var e pgproto3.ErrorResponse
	e.Decode(m.body)
	return &e
}

// expectError reads until an ErrorResponse and checks its SQLSTATE; any
// other message on the way fails the test unless it is in skip.
func (r *rawConn) expectError(t *testing.T, code string, skip ...byte) *pgproto3.ErrorResponse {
	t.Helper()
	for {
		m, err := r.recv()
		if err != nil {
			t.Fatalf("want ErrorResponse %s, got %v", code, err)
		}
		if m.typ == 'E' {
			e := decodeError(m)
			if e.Code != code {
				t.Fatalf("want SQLSTATE %s, got %s %q", code, e.Code, e.Message)
			}
			return e
		}
		if !strings.ContainsRune(string(skip), rune(m.typ)) {
			t.Fatalf("want ErrorResponse %s, got %v", code, m)
		}
	}
}

// expectClosed checks the server closes the connection (EOF, not a timeout).
func (r *rawConn) expectClosed(t *testing.T) {
	t.Helper()
	for {
		m, err := r.recv()
		if err == nil {
			if m.typ == 'E' || m.typ == 'N' || m.typ == 'R' {
				continue
			}
			t.Fatalf("want the connection closed, got %v", m)
		}
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("want the connection closed, still open: %v", err)
		}
		return
	}
}

// readyForQuery reads up to ReadyForQuery and returns the messages before it.
func (r *rawConn) readyForQuery(t *testing.T) []msg {
	t.Helper()
	var got []msg
	for {
		m := r.mustRecv(t)
		if m.typ == 'Z' {
			return got
		}
		if m.typ == 'E' {
			t.Fatalf("unexpected %v", m)
		}
		got = append(got, m)
	}
}

func startup(user, db string) []byte {
	b, _ := (&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber,
		Parameters: map[string]string{"user": user, "database": db}}).Encode(nil)
	return b
}

func query(sql string) []byte {
	b, _ := (&pgproto3.Query{String: sql}).Encode(nil)
	return b
}

// header is a message header claiming a body of n bytes.
func header(typ byte, n int) []byte {
	b := []byte{typ, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[1:], uint32(n+4))
	return b
}

// loginTrust logs in as the trust user (no password exchange).
func loginTrust(t *testing.T, addr string) *rawConn {
	t.Helper()
	r := dialRaw(t, addr)
	r.send(t, startup("trusty", "app"))
	r.readyForQuery(t)
	return r
}

// liveHeap is the heap in use after a full collection (pgrouter runs in
// this process).
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// allocated is the bytes allocated since the process started.
func allocated() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.TotalAlloc
}

const mib = 1 << 20

// startInstance runs a second pgrouter on the test cluster's config, changed
// by edit, for tests that need other limits.
func startInstance(t *testing.T, edit func(*config.Config)) *proxy.Instance {
	t.Helper()
	cfg, err := config.Load(env.Path)
	if err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = t.TempDir()
	edit(cfg)
	return testenv.StartInstance(t, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// counter reads a counter of reg by name (0 if absent).
func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			sum := 0.0
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
			return sum
		}
	}
	return 0
}

func newReader(c net.Conn) *bufio.Reader { return bufio.NewReaderSize(c, 4096) }

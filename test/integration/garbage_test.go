package integration

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// readUntilClosed reads what the proxy answers until it closes the socket
// (bounded by a deadline: a hang fails the test).
func readUntilClosed(t *testing.T, c net.Conn) []byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	out, err := io.ReadAll(c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("proxy neither answered nor closed the connection; got %q", out)
	}
	return out
}

func TestGarbageStartupIsRefused(t *testing.T) {
	for _, payload := range [][]byte{
		[]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
		{0, 0, 0, 8, 0, 9, 0, 0},             // protocol 9.0
		{0x7f, 0xff, 0xff, 0xff, 1, 2, 3, 4}, // absurd length
	} {
		c, err := net.Dial("tcp", env.Proxy.Addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Write(payload)
		out := readUntilClosed(t, c)
		c.Close()
		if len(out) > 0 && out[0] != 'E' {
			t.Errorf("payload %q: answer %q is not an ErrorResponse", payload, out)
		}
	}
}

// login speaks the startup + trust login by hand and returns the raw conn.
func rawLogin(t *testing.T) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", env.Proxy.Addr)
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := (&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber,
		Parameters: map[string]string{"user": "trusty", "database": "app"}}).Encode(nil)
	c.Write(msg)
	fe := pgproto3.NewFrontend(c, c)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		m, err := fe.Receive()
		if err != nil {
			t.Fatalf("login: %v", err)
		}
		if _, ok := m.(*pgproto3.ReadyForQuery); ok {
			return c
		}
	}
}

func TestGarbageAfterLoginGetsProtocolError(t *testing.T) {
	cases := map[string][]byte{
		"unknown type":   {'!', 0, 0, 0, 4},
		"bad length":     {'Q', 0, 0, 0, 1},
		"huge length":    {'Q', 0x7f, 0xff, 0xff, 0xff},
		"truncated bind": append([]byte{'B', 0, 0, 0, 7, 'x', 0, 'y'}, 'S', 0, 0, 0, 4),
	}
	for name, payload := range cases {
		c := rawLogin(t)
		c.Write(payload)
		out := readUntilClosed(t, c)
		c.Close()
		if !bytes.Contains(out, []byte("08P01")) {
			t.Errorf("%s: want a 08P01 protocol error, got %q", name, out)
		}
	}
	// The proxy is still fine for everyone else.
	c := connect(t, env.AppDSN())
	var one int
	if err := c.QueryRow(t.Context(), "select 1").Scan(&one); err != nil {
		t.Fatal(err)
	}
}

package proxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pgrouter/pgrouter/config"
)

// A header's length is checked before anything is allocated for its body,
// and the body buffer grows with the bytes that really arrive.
func TestFrameReaderAllocatesWhatArrives(t *testing.T) {
	in := append([]byte{'Q', 0x0f, 0xff, 0xff, 0xff}, bytes.Repeat([]byte{'a'}, 1000)...)
	fr := newFrameReader(bytes.NewReader(in), 64)
	if _, _, err := fr.next(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("want a short read, got %v", err)
	}
	if cap(fr.big) > 1<<20 {
		t.Fatalf("a 256 MiB header with 1000 bytes behind it grew the buffer to %d bytes", cap(fr.big))
	}
	fr = newFrameReader(bytes.NewReader(in), 64)
	fr.max = 1 << 20
	var long errMessageTooLong
	if _, _, err := fr.next(); !errors.As(err, &long) || long.typ != 'Q' {
		t.Fatalf("want errMessageTooLong for Q, got %v", err)
	}
	startup := []byte{0x7f, 0xff, 0xff, 0xff, 0, 3, 0, 0}
	fr = newFrameReader(bytes.NewReader(startup), 64)
	fr.max = maxStartupPacket
	if _, err := fr.nextStartup(); !errors.As(err, &long) || long.typ != 0 {
		t.Fatalf("want errMessageTooLong for a startup packet, got %v", err)
	}
}

// Shared error values (topology, router) are never changed: the FATAL a
// login answers with is a copy.
func TestLoginErrorCopiesSharedErrors(t *testing.T) {
	shared := &pgconn.PgError{Severity: "ERROR", Code: "57P03", Message: "no primary"}
	got := loginError(shared)
	if got == shared || got.Severity != "FATAL" || shared.Severity != "ERROR" {
		t.Fatalf("loginError changed the shared value: %+v / %+v", got, shared)
	}
	if loginError(io.EOF) != nil {
		t.Fatal("a client that left is not answered")
	}
}

// After limit failures in a window an address is refused until the window
// ends; other addresses are not affected.
func TestGuardThrottlesAnAddress(t *testing.T) {
	var g guard
	g.init(prometheus.NewRegistry())
	l := config.Limits{AuthFailures: 2, AuthFailureWindow: config.Duration(50 * time.Millisecond)}
	a := &net.TCPAddr{IP: net.ParseIP("10.0.0.1"), Port: 1}
	b := &net.TCPAddr{IP: net.ParseIP("10.0.0.2"), Port: 2}
	g.failed(a, l)
	if g.blocked(a, l) != 0 {
		t.Fatal("blocked after one failure of two allowed")
	}
	g.failed(&net.TCPAddr{IP: a.IP, Port: 9}, l) // same address, other port
	if g.blocked(a, l) == 0 {
		t.Fatal("not blocked after two failures")
	}
	if g.blocked(b, l) != 0 {
		t.Fatal("another address is blocked")
	}
	v6a := &net.TCPAddr{IP: net.ParseIP("2001:db8::1")}
	g.failed(v6a, l)
	g.failed(&net.TCPAddr{IP: net.ParseIP("2001:db8::ffff:1")}, l) // same /64
	if g.blocked(v6a, l) == 0 {
		t.Fatal("an IPv6 /64 is not counted as one source")
	}
	if g.blocked(&net.TCPAddr{IP: net.ParseIP("2001:db8:0:1::1")}, l) != 0 {
		t.Fatal("another /64 is blocked")
	}
	time.Sleep(60 * time.Millisecond)
	if g.blocked(a, l) != 0 {
		t.Fatal("still blocked after the window")
	}
	if l.AuthFailures = 0; g.blocked(a, l) != 0 {
		t.Fatal("auth_failures 0 must turn throttling off")
	}
}

// Unknown users are challenged like the configured ones: md5 only when no
// password user uses SCRAM (trust users log in without a challenge).
func TestMockMethod(t *testing.T) {
	users := func(methods ...string) map[string]*userAuth {
		m := map[string]*userAuth{}
		for i, meth := range methods {
			m[string(rune('a'+i))] = &userAuth{method: meth}
		}
		return m
	}
	for _, c := range []struct {
		methods []string
		want    string
	}{
		{[]string{"md5", "trust"}, "md5"},
		{[]string{"md5", "scram-sha-256"}, "scram-sha-256"},
		{[]string{"trust"}, "scram-sha-256"},
		{[]string{"scram-sha-256"}, "scram-sha-256"},
	} {
		if got := mockMethod(users(c.methods...)); got != c.want {
			t.Errorf("%v: %s, want %s", c.methods, got, c.want)
		}
	}
}

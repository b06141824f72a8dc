package faults

import (
	"context"
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
)

// allocBound is how much pgrouter (and this test) may allocate while a
// hostile header is refused: far below what the header claims.
const allocBound = 32 * mib

// A length prefix far beyond the bound of its phase is refused with 08P01
// before anything is allocated for it: the 10 bytes of the issue (startup
// for a known user, then a SASL header claiming 2 GiB) cost nothing.
func TestOversizedMessagesBeforeLogin(t *testing.T) {
	cases := []struct {
		name, user string
		auth       int // first auth request expected before the header
	}{
		{"scram user", "app", 10},
		{"md5 user", "md5user", 5},
		{"unknown user", "nosuchuser", 10},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := allocated()
			r := dialRaw(t, env.Proxy.Addr)
			r.send(t, startup(tc.user, "app"))
			if m := r.mustRecv(t); m.authCode() != tc.auth {
				t.Fatalf("want authentication request %d, got %v", tc.auth, m)
			}
			r.send(t, header('p', 1<<31-1-4))
			e := r.expectError(t, "08P01")
			if !strings.Contains(e.Message, "invalid message length") {
				t.Errorf("message %q", e.Message)
			}
			r.expectClosed(t)
			if got := allocated() - before; got > allocBound {
				t.Errorf("allocated %d MiB refusing a 2 GiB header, want < %d MiB", got/mib, allocBound/mib)
			}
		})
	}
	t.Run("startup packet", func(t *testing.T) {
		before := allocated()
		r := dialRaw(t, env.Proxy.Addr)
		r.send(t, []byte{0x7f, 0xff, 0xff, 0xff, 0, 3, 0, 0})
		e := r.expectError(t, "08P01")
		if !strings.Contains(e.Message, "startup packet") {
			t.Errorf("message %q", e.Message)
		}
		r.expectClosed(t)
		if got := allocated() - before; got > allocBound {
			t.Errorf("allocated %d MiB refusing a 2 GiB startup packet", got/mib)
		}
	})
	assertServing(t)
}

// After login, limits.max_message_size bounds a message; memory grows with
// the bytes really received, not with what a header claims.
func TestOversizedMessagesAfterLogin(t *testing.T) {
	t.Run("beyond max_message_size", func(t *testing.T) {
		r := loginTrust(t, env.Proxy.Addr)
		before := allocated()
		r.send(t, header('Q', maxMessage+1))
		e := r.expectError(t, "08P01")
		if !strings.Contains(e.Message, "invalid message length") {
			t.Errorf("message %q", e.Message)
		}
		r.expectClosed(t)
		if got := allocated() - before; got > allocBound {
			t.Errorf("allocated %d MiB refusing a header over max_message_size", got/mib)
		}
	})
	t.Run("claimed but not sent", func(t *testing.T) {
		r := loginTrust(t, env.Proxy.Addr)
		before := allocated()
		r.send(t, header('Q', maxMessage-1), []byte("select 1"))
		time.Sleep(200 * time.Millisecond)
		r.Close()
		if got := allocated() - before; got > allocBound {
			t.Errorf("allocated %d MiB for a %d MiB header of which 8 bytes arrived", got/mib, maxMessage/mib)
		}
	})
	assertServing(t)
}

// A big message is handled, and the buffers it grew do not stay attached to
// the connection: the live heap returns near its baseline while the client
// stays connected (client → proxy, proxy → backend, backend → client).
func TestBigMessageBuffersReleased(t *testing.T) {
	const size = 8 * mib
	r := loginTrust(t, env.Proxy.Addr)
	r.send(t, query("select 1"))
	r.readyForQuery(t)
	base := liveHeap()

	r.send(t, query("select length('"+strings.Repeat("x", size)+"')"))
	if got := dataRowText(t, r.readyForQuery(t)); got != "8388608" {
		t.Fatalf("length = %q", got)
	}
	r.send(t, bigBind(size))
	if got := dataRowText(t, r.readyForQuery(t)); got != "8388608" {
		t.Fatalf("extended length = %q", got)
	}
	r.send(t, query("select repeat('y', 8388608)"))
	rows := r.readyForQuery(t)
	if len(rows) < 2 || rows[1].typ != 'D' || rows[1].n < size {
		t.Fatalf("big row not relayed: %v", rows)
	}

	after := liveHeap()
	t.Logf("live heap: %d MiB before, %d MiB after three %d MiB messages (connection open)", base/mib, after/mib, size/mib)
	if after > base+4*mib {
		t.Errorf("live heap grew by %d MiB and stayed: buffers of the big messages are still held", (after-base)/mib)
	}
}

// bigBind is Parse/Bind/Execute/Sync of select length($1) with an n-byte text.
func bigBind(n int) []byte {
	var b []byte
	b, _ = (&pgproto3.Parse{Query: "select length($1::text)"}).Encode(b)
	b, _ = (&pgproto3.Bind{Parameters: [][]byte{[]byte(strings.Repeat("z", n))}}).Encode(b)
	b, _ = (&pgproto3.Execute{}).Encode(b)
	b, _ = (&pgproto3.Sync{}).Encode(b)
	return b
}

// dataRowText is the first column of the first DataRow among msgs.
func dataRowText(t *testing.T, msgs []msg) string {
	t.Helper()
	for _, m := range msgs {
		if m.typ == 'D' {
			var d pgproto3.DataRow
			if err := d.Decode(m.body); err != nil || len(d.Values) == 0 {
				t.Fatalf("bad DataRow: %v", err)
			}
			return string(d.Values[0])
		}
	}
	t.Fatalf("no DataRow in %v", msgs)
	return ""
}

// Slow, silent and truncating clients are dropped at login_timeout (2s
// here) and leave pgrouter serving.
func TestSlowSilentAndTruncatedClients(t *testing.T) {
	half := startup("app", "app")
	probes := map[string][]byte{
		"silent":             nil,
		"half startup":       half[:len(half)/2],
		"header only":        half[:4],
		"truncated password": append(startup("md5user", "app"), header('p', 100)[:5]...),
	}
	t.Run("timeouts", func(t *testing.T) {
		for name, b := range probes {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				r := dialRaw(t, env.Proxy.Addr)
				if b != nil {
					r.send(t, b)
				}
				start := time.Now()
				r.expectClosed(t) // read deadline 15s: a hang fails
				t.Logf("closed after %v", time.Since(start).Round(10*time.Millisecond))
			})
		}
	})
	t.Run("garbage startup", func(t *testing.T) {
		r := dialRaw(t, env.Proxy.Addr)
		b := []byte{0, 0, 0, 12, 0, 3, 0, 0, 'u', 's', 'e', 'r'} // no terminating NULs
		r.send(t, b)
		r.expectError(t, "08P01")
		r.expectClosed(t)
	})
	t.Run("length below minimum", func(t *testing.T) {
		r := dialRaw(t, env.Proxy.Addr)
		r.send(t, binary.BigEndian.AppendUint32(nil, 3))
		r.expectError(t, "08P01")
		r.expectClosed(t)
	})
	assertServing(t)
}

// assertServing checks a normal client still gets an answer.
func assertServing(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, env.AppDSN())
	if err != nil {
		t.Fatalf("pgrouter no longer serves: %v", err)
	}
	defer c.Close(ctx)
	var n int
	if err := c.QueryRow(ctx, "select 1").Scan(&n); err != nil || n != 1 {
		t.Fatalf("select 1: %v %d", err, n)
	}
}

// An idle logged-in client costs little (its reader, session maps and
// goroutine), and an unauthenticated one less: the figures are logged, and
// bounded generously so that a regression of the buffers shows.
func TestIdleClientMemory(t *testing.T) {
	const n = 200
	base := liveHeap()
	var conns []*rawConn
	for i := 0; i < n; i++ {
		conns = append(conns, loginTrust(t, env.Proxy.Addr))
	}
	perClient := int64(liveHeap()-base) / n
	for i := 0; i < n; i++ {
		r := dialRaw(t, env.Proxy.Addr)
		r.send(t, startup("app", "app"))
		if m := r.mustRecv(t); m.authCode() != authSASL {
			t.Fatalf("want AuthenticationSASL, got %v", m)
		}
		conns = append(conns, r)
	}
	perLogin := (int64(liveHeap()-base) - perClient*n) / n
	t.Logf("heap per idle client: %d KiB logged in, %d KiB waiting in SCRAM", perClient>>10, perLogin>>10)
	if perClient > 64<<10 || perLogin > 16<<10 {
		t.Errorf("idle clients cost %d / %d bytes each, want < 64 KiB / 16 KiB", perClient, perLogin)
	}
	for _, c := range conns {
		c.Close()
	}
}

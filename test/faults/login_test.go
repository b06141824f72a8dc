package faults

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/xdg-go/scram"

	"github.com/pgrouter/pgrouter/config"
)

const (
	authOK           = 0
	authSASL         = 10
	authSASLContinue = 11
	authSASLFinal    = 12
)

// scramStart is a SASLInitialResponse opening a SCRAM-SHA-256 exchange.
func scramStart(t *testing.T, user, password string) (*scram.ClientConversation, []byte) {
	t.Helper()
	client, err := scram.SHA256.NewClient(user, password, "")
	if err != nil {
		t.Fatal(err)
	}
	conv := client.NewConversation()
	first, err := conv.Step("")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := (&pgproto3.SASLInitialResponse{AuthMechanism: "SCRAM-SHA-256", Data: []byte(first)}).Encode(nil)
	return conv, b
}

// scramFinish answers the server's SCRAM challenge and returns the
// server-first message (salt, iterations) and the answer to the proof.
func scramFinish(t *testing.T, r *rawConn, conv *scram.ClientConversation) (serverFirst string, answer msg) {
	t.Helper()
	m := r.mustRecv(t)
	if m.authCode() != authSASLContinue {
		t.Fatalf("want SASLContinue, got %v", m)
	}
	serverFirst = string(m.body[4:])
	final, err := conv.Step(serverFirst)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := (&pgproto3.SASLResponse{Data: []byte(final)}).Encode(nil)
	r.send(t, b)
	return serverFirst, r.mustRecv(t)
}

// Bytes a client sends in the same packet as its startup message are its
// next messages, not noise: a pipelined SASL response or query is answered
// at once (it used to wait for login_timeout).
func TestPipelinedLogin(t *testing.T) {
	t.Run("trust and query", func(t *testing.T) {
		r := dialRaw(t, env.Proxy.Addr)
		r.SetDeadline(time.Now().Add(5 * time.Second))
		r.send(t, startup("trusty", "app"), query("select 42"))
		r.readyForQuery(t)
		if got := dataRowText(t, r.readyForQuery(t)); got != "42" {
			t.Fatalf("select 42 = %q", got)
		}
	})
	t.Run("scram", func(t *testing.T) {
		r := dialRaw(t, env.Proxy.Addr)
		r.SetDeadline(time.Now().Add(5 * time.Second))
		conv, first := scramStart(t, "app", "app")
		r.send(t, startup("app", "app"), first)
		if m := r.mustRecv(t); m.authCode() != authSASL {
			t.Fatalf("want AuthenticationSASL, got %v", m)
		}
		if _, m := scramFinish(t, r, conv); m.authCode() != authSASLFinal {
			t.Fatalf("want SASLFinal, got %v", m)
		}
		r.readyForQuery(t)
	})
	t.Run("inside tls", func(t *testing.T) {
		r := dialRaw(t, env.Proxy.Addr)
		r.send(t, sslRequest())
		if b, err := r.r.ReadByte(); err != nil || b != 'S' {
			t.Fatalf("SSLRequest answer %q %v", b, err)
		}
		tc := tls.Client(r.Conn, &tls.Config{InsecureSkipVerify: true})
		tr := &rawConn{Conn: tc, r: newReader(tc)}
		tr.SetDeadline(time.Now().Add(5 * time.Second))
		tr.send(t, startup("trusty", "app"), query("select 43"))
		tr.readyForQuery(t)
		if got := dataRowText(t, tr.readyForQuery(t)); got != "43" {
			t.Fatalf("select 43 = %q", got)
		}
	})
}

func sslRequest() []byte { return []byte{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f} }

// Bytes sent behind an SSLRequest, before the TLS handshake, were not
// encrypted: refused like Postgres does (CVE-2021-23214), never read as if
// they had come through TLS.
func TestUnencryptedBytesAfterSSLRequest(t *testing.T) {
	r := dialRaw(t, env.Proxy.Addr)
	r.send(t, sslRequest(), startup("trusty", "app"))
	b, err := r.r.ReadByte()
	if err != nil {
		t.Fatal(err)
	}
	if b != 'E' {
		t.Fatalf("want an ErrorResponse, got %q (the bytes before the handshake were accepted)", b)
	}
	r.r.UnreadByte()
	e := r.expectError(t, "08P01")
	if !strings.Contains(e.Message, "unencrypted data after SSL request") {
		t.Errorf("message %q", e.Message)
	}
	r.expectClosed(t)
}

// attempt is the shape of one failed SCRAM login: the messages seen, the
// final SQLSTATE and message, and the server-first message.
type attempt struct {
	shape       string
	serverFirst string
	took        time.Duration
}

func failSCRAM(t *testing.T, user string) attempt {
	t.Helper()
	start := time.Now()
	r := dialRaw(t, env.Proxy.Addr)
	r.send(t, startup(user, "app"))
	m := r.mustRecv(t)
	if m.authCode() != authSASL {
		return attempt{shape: "first answer " + m.String()}
	}
	conv, first := scramStart(t, user, "wrong password")
	r.send(t, first)
	sf, m := scramFinish(t, r, conv)
	if m.typ != 'E' {
		t.Fatalf("wrong password accepted for %s: %v", user, m)
	}
	e := decodeError(m)
	msgText := strings.ReplaceAll(e.Message, user, "USER")
	r.expectClosed(t)
	return attempt{shape: "SASL, SASLContinue, " + e.Severity + " " + e.Code + " " + msgText, serverFirst: sf, took: time.Since(start)}
}

// An unknown user sees what a real user with a wrong password sees: a SCRAM
// challenge with a stable salt and the same 28P01 at the end.
func TestUnknownUserLooksLikeWrongPassword(t *testing.T) {
	real := failSCRAM(t, "app")
	unknown := failSCRAM(t, "nosuchuser")
	if real.shape != unknown.shape {
		t.Fatalf("answers differ:\n real user:    %s\n unknown user: %s", real.shape, unknown.shape)
	}
	again := failSCRAM(t, "nosuchuser")
	other := failSCRAM(t, "nosuchuser2")
	salt := func(a attempt) string { return field(a.serverFirst, "s=") + " i=" + field(a.serverFirst, "i=") }
	if salt(unknown) != salt(again) {
		t.Errorf("mock salt changes between attempts: %s vs %s", salt(unknown), salt(again))
	}
	if salt(unknown) == salt(other) {
		t.Errorf("two unknown users share a salt: %s", salt(unknown))
	}
	if field(real.serverFirst, "i=") != field(unknown.serverFirst, "i=") {
		t.Errorf("iterations differ: %s vs %s", real.serverFirst, unknown.serverFirst)
	}
	// Timing, reported (not asserted: the machine is shared).
	var rt, ut []time.Duration
	for i := 0; i < 15; i++ {
		rt = append(rt, failSCRAM(t, "app").took)
		ut = append(ut, failSCRAM(t, fmt.Sprintf("ghost%d", i)).took)
	}
	t.Logf("failed login median: real user %v, unknown user %v", median(rt), median(ut))
}

func field(serverFirst, key string) string {
	for _, f := range strings.Split(serverFirst, ",") {
		if strings.HasPrefix(f, key) {
			return f[len(key):]
		}
	}
	return ""
}

func median(d []time.Duration) time.Duration {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[len(d)/2]
}

// After limits.auth_failures failed logins from one address within the
// window, its logins are refused with 53300, the right password too, until
// the window ends.
func TestFailedLoginsThrottled(t *testing.T) {
	inst := startInstance(t, func(c *config.Config) {
		c.Listen, c.Metrics.Listen = "127.0.0.1:0", "off"
		c.Limits.AuthFailures = 3
		c.Limits.AuthFailureWindow = config.Duration(2 * time.Second)
	})
	dsn := func(pw string) string {
		return fmt.Sprintf("postgres://app:%s@%s/app?sslmode=disable", pw, inst.Addr)
	}
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if code := connectCode(ctx, dsn("wrong")); code != "28P01" {
			t.Fatalf("attempt %d: want 28P01, got %q", i+1, code)
		}
	}
	if code := connectCode(ctx, dsn("app")); code != "53300" {
		t.Fatalf("after 3 failures: want 53300, got %q", code)
	}
	reg := inst.Server.Metrics.Registry
	if f, th := counter(t, reg, "pgrouter_auth_failures_total"), counter(t, reg, "pgrouter_auth_throttled_total"); f != 3 || th != 1 {
		t.Errorf("metrics: auth_failures %v (want 3), throttled %v (want 1)", f, th)
	}
	deadline := time.Now().Add(10 * time.Second)
	for connectCode(ctx, dsn("app")) != "" {
		if time.Now().After(deadline) {
			t.Fatal("the address is still refused long after the window")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// connectCode logs in and returns the SQLSTATE of the refusal, "" on success.
func connectCode(ctx context.Context, dsn string) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		var pge *pgconn.PgError
		if errors.As(err, &pge) {
			return pge.Code
		}
		return "error: " + err.Error()
	}
	c.Close(ctx)
	return ""
}

// pprof is served only when asked for: the metrics listener has no
// authentication.
func TestPprofOptIn(t *testing.T) {
	get := func(addr, path string) int {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get(env.Proxy.MetricsAddr, "/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("pprof by default: HTTP %d, want 404", code)
	}
	if code := get(env.Proxy.MetricsAddr, "/metrics"); code != http.StatusOK {
		t.Errorf("/metrics: HTTP %d", code)
	}
	inst := startInstance(t, func(c *config.Config) {
		c.Listen, c.Metrics.Listen, c.Metrics.PProf = "127.0.0.1:0", "127.0.0.1:0", true
	})
	if code := get(inst.MetricsAddr, "/debug/pprof/"); code != http.StatusOK {
		t.Errorf("pprof with metrics.pprof: HTTP %d, want 200", code)
	}
}

// When every password user is md5, an unknown user gets an md5 challenge
// (a SCRAM one would give the unknown names away) and the same 28P01.
func TestUnknownUserMD5Challenge(t *testing.T) {
	inst := startInstance(t, func(c *config.Config) {
		c.Listen, c.Metrics.Listen = "127.0.0.1:0", "off"
		var users []config.User
		for _, u := range c.Users {
			if u.Auth == "md5" || u.Auth == "trust" {
				users = append(users, u)
			}
		}
		c.Users = users
	})
	for _, user := range []string{"md5user", "nosuchuser"} {
		r := dialRaw(t, inst.Addr)
		r.send(t, startup(user, "app"))
		if m := r.mustRecv(t); m.authCode() != 5 {
			t.Fatalf("%s: want AuthenticationMD5Password, got %v", user, m)
		}
		pw, _ := (&pgproto3.PasswordMessage{Password: "md5" + strings.Repeat("0", 32)}).Encode(nil)
		r.send(t, pw)
		e := r.expectError(t, "28P01")
		if want := fmt.Sprintf("password authentication failed for user %q", user); e.Message != want {
			t.Errorf("%s: message %q, want %q", user, e.Message, want)
		}
	}
}

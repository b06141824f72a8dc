package ops

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgrouter/pgrouter/config"
	"github.com/pgrouter/pgrouter/proxy"
)

// logSink collects a pgrouter's JSON log lines (slog writes each line in one
// Write call; the handlers serialise them).
type logSink struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *logSink) text() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// entries parses every line; a line that is not a JSON object fails the test.
func (s *logSink) entries(t testing.TB) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(s.text()), "\n") {
		if l == "" {
			continue
		}
		var e map[string]any
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("log line is not JSON: %v\n%s", err, l)
		}
		for _, k := range []string{"time", "level", "msg"} {
			if _, ok := e[k]; !ok {
				t.Errorf("log line without %q: %s", k, l)
			}
		}
		out = append(out, e)
	}
	return out
}

// find returns the entries whose msg starts with msg.
func find(es []map[string]any, msg string) []map[string]any {
	var out []map[string]any
	for _, e := range es {
		if m, _ := e["msg"].(string); strings.HasPrefix(m, msg) {
			out = append(out, e)
		}
	}
	return out
}

// waitEntry polls the sink until an entry with msg (and, if given, the
// attribute values in want) appears.
func waitEntry(t *testing.T, sink *logSink, msg string, want map[string]any) map[string]any {
	t.Helper()
	var got map[string]any
	eventually(t, 15*time.Second, "log entry "+msg, func() error {
	next:
		for _, e := range find(sink.entries(t), msg) {
			for k, v := range want {
				if fmt.Sprint(e[k]) != fmt.Sprint(v) {
					continue next
				}
			}
			got = e
			return nil
		}
		return fmt.Errorf("no %q entry with %v yet", msg, want)
	})
	return got
}

// startLoggedProxy starts a second pgrouter over the shared cluster with a
// JSON logger at info (the default level) writing to the returned sink.
// edit may change the loaded config before start.
func startLoggedProxy(t *testing.T, path string, edit func(*config.Config)) (*proxy.Instance, *logSink) {
	t.Helper()
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listen, cfg.Metrics.Listen = "127.0.0.1:0", "off"
	if edit != nil {
		edit(cfg)
	}
	sink := &logSink{}
	log := slog.New(slog.NewJSONHandler(sink, &slog.HandlerOptions{Level: slog.LevelInfo}))
	inst, err := proxy.Start(context.Background(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		inst.Close(ctx)
	})
	return inst, sink
}

func instDSN(inst *proxy.Instance, user, password, db string) string {
	return "postgres://" + user + ":" + password + "@" + inst.Addr + "/" + db + "?sslmode=disable"
}

// wantKeys checks that e carries every key, and that numeric keys are numbers.
func wantKeys(t *testing.T, e map[string]any, keys ...string) {
	t.Helper()
	for _, k := range keys {
		v, ok := e[k]
		if !ok {
			t.Errorf("%q entry has no %q: %v", e["msg"], k, e)
			continue
		}
		switch k {
		case "client_id", "duration_ms", "backend_pid":
			if _, isNum := v.(float64); !isNum {
				t.Errorf("%q entry: %s = %v (%T), want a number", e["msg"], k, v, v)
			}
		}
	}
}

// A session with a wrong password, a normal query, slow queries carrying a
// secret literal and a secret parameter, and a refused statement; then the
// log is checked line by line: JSON, documented key names, lifecycle at
// info, statement shapes without values, no password anywhere.
func TestLogsKeysLevelsAndNoSecrets(t *testing.T) {
	const (
		wrongPassword = "wrong-pw-Xq7Secret"
		secretLiteral = "lit-Zr9Secret"
		secretParam   = "param-Kw3Secret"
		slowThreshold = 150 * time.Millisecond
	)
	inst, sink := startLoggedProxy(t, env.Path, func(c *config.Config) {
		c.Log.SlowQuery = config.Duration(slowThreshold)
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// 1. Wrong password: 28P01 to the client, "login refused" in the log.
	if c, err := pgx.Connect(ctx, instDSN(inst, "app", wrongPassword, "app")); err == nil {
		c.Close(ctx)
		t.Fatal("login with a wrong password succeeded")
	} else if code, _ := pgCode(err); code != "28P01" {
		t.Fatalf("wrong password: %v (want 28P01)", err)
	}

	// 2. A normal session.
	c, err := pgx.Connect(ctx, instDSN(inst, "app", "app", "app"))
	if err != nil {
		t.Fatal(err)
	}
	var one int
	if err := c.QueryRow(ctx, "select 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("select 1: %v %d", err, one)
	}
	// 3. Slow queries: an inline literal (simple protocol) and a parameter (extended).
	var s string
	if err := c.QueryRow(ctx, "select '"+secretLiteral+"'::text from pg_sleep(0.3)", pgx.QueryExecModeSimpleProtocol).Scan(&s); err != nil || s != secretLiteral {
		t.Fatalf("slow query with a literal: %v %q", err, s)
	}
	if err := c.QueryRow(ctx, "select $1::text from pg_sleep(0.3)", secretParam).Scan(&s); err != nil || s != secretParam {
		t.Fatalf("slow query with a parameter: %v %q", err, s)
	}
	// 4. A statement pgrouter refuses itself (nothing reaches a backend).
	_, err = c.Exec(ctx, "SET pgrouter.role = 'sideways'", pgx.QueryExecModeSimpleProtocol)
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		t.Fatalf("SET pgrouter.role to a bad value: %v (want a Postgres error)", err)
	}
	refusedCode := pe.Code
	var clientID float64
	{
		e := waitEntry(t, sink, "client connected", map[string]any{"user": "app", "db": "app"})
		clientID, _ = e["client_id"].(float64)
	}
	c.Close(ctx)

	// Lifecycle at info with the documented keys.
	refused := waitEntry(t, sink, "login refused", map[string]any{"user": "app", "sqlstate": "28P01"})
	wantKeys(t, refused, "user", "db", "addr", "sqlstate", "err")
	connected := waitEntry(t, sink, "client connected", map[string]any{"client_id": clientID})
	wantKeys(t, connected, "client_id", "user", "db", "addr")
	gone := waitEntry(t, sink, "client disconnected", map[string]any{"client_id": clientID})
	wantKeys(t, gone, "client_id", "user", "db", "duration_ms")
	backend := waitEntry(t, sink, "backend connected", map[string]any{"user": "app", "db": "app"})
	wantKeys(t, backend, "shard", "node", "user", "db", "addr", "backend_pid", "duration_ms")
	rq := waitEntry(t, sink, "query refused", map[string]any{"client_id": clientID})
	wantKeys(t, rq, "client_id", "user", "db", "sqlstate", "err")
	if rq["sqlstate"] != refusedCode {
		t.Errorf("query refused logged sqlstate %v, the client got %s", rq["sqlstate"], refusedCode)
	}
	for _, e := range []map[string]any{refused, connected, gone, backend, rq} {
		if e["level"] != "INFO" {
			t.Errorf("%q logged at %v, want INFO", e["msg"], e["level"])
		}
	}

	// Slow queries: both logged with their shape (literals as $n), neither
	// value. The pg_sleep(0.3) queries are slow for sure; "select 1" may be
	// too on a loaded box. Every statement logged must be a shape.
	const literalShape = "select $1::text from pg_sleep($2)"
	var shapes []string
	sawLiteral, slow300 := false, 0
	for _, e := range find(sink.entries(t), "slow query") {
		wantKeys(t, e, "client_id", "user", "db", "shard", "node", "role", "duration_ms", "statement")
		d, _ := e["duration_ms"].(float64)
		if d < float64(slowThreshold.Milliseconds()) {
			t.Errorf("slow query logged with duration_ms %v under the %s threshold", d, slowThreshold)
		}
		if d >= 300 {
			slow300++
		}
		if e["level"] != "WARN" {
			t.Errorf("slow query at %v, want WARN", e["level"])
		}
		stmt, _ := e["statement"].(string)
		shapes = append(shapes, stmt)
		switch stmt {
		case literalShape:
			sawLiteral = true
		case "select …": // text that already has $n is left to the first word by the shaper
		case "select $1": // select 1
		default:
			t.Errorf("slow query logged as %q: not a shape of this test's statements", stmt)
		}
	}
	t.Logf("slow-query shapes: %q", shapes)
	// The simple-protocol text comes back with its literals lifted.
	if !sawLiteral {
		t.Errorf("no slow-query entry %q for the query with a literal", literalShape)
	}
	if slow300 < 2 {
		t.Errorf("%d slow-query entries of 300ms or more, want 2 (literal and parameter):\n%s", slow300, sink.text())
	}

	// Nothing secret anywhere, and no synonyms of the documented keys.
	all := sink.text()
	if testing.Verbose() {
		t.Logf("log:\n%s", all)
	}
	for _, secret := range []string{wrongPassword, secretLiteral, secretParam, env.Cluster.Password} {
		if strings.Contains(all, secret) {
			t.Errorf("the log contains %q:\n%s", secret, all)
		}
	}
	for _, e := range sink.entries(t) {
		for _, bad := range []string{"remote", "remote_addr", "client", "pid", "database", "dbname", "duration",
			"elapsed", "sql_state", "code", "error", "query", "sql", "password"} {
			if _, ok := e[bad]; ok {
				t.Errorf("%q entry uses key %q (see the Logs section of docs/ARCHITECTURE.md): %v", e["msg"], bad, e)
			}
		}
	}
}

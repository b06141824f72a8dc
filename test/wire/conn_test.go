package wire

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// Every read has a deadline: a hang is a reported divergence, never a stuck
// test. Postgres on loopback answers these scripts in milliseconds; the
// reference gets a generous bound (a loaded machine), pgrouter a shorter one
// once Postgres has shown the answer exists (each hang costs this much).
var (
	refTimeout   = envDuration("WIRE_REF_TIMEOUT", 10*time.Second)
	proxyTimeout = envDuration("WIRE_READ_TIMEOUT", 3*time.Second)
)

func envDuration(name string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(name)); err == nil && d > 0 {
		return d
	}
	return def
}

// profile is one client's session state, sent as startup parameters to
// Postgres and to pgrouter alike. Each profile owns a schema (its
// search_path) so clients running at once do not share tables.
type profile struct {
	name   string
	schema string
	params map[string]string
}

// profiles differ from the servers' defaults in every setting a driver
// commonly sends: the bugs hide where all clients look the same.
var profiles = []profile{
	{"plain", "wire_c0", map[string]string{"search_path": "wire_c0"}},
	{"latin1", "wire_c1", map[string]string{
		"application_name": "wire-latin1", "client_encoding": "LATIN1", "TimeZone": "America/New_York",
		"DateStyle": "SQL, DMY", "IntervalStyle": "postgres_verbose", "extra_float_digits": "0", "search_path": "wire_c1"}},
	{"german", "wire_c2", map[string]string{
		"application_name": "wire_german", "TimeZone": "Asia/Kolkata", "DateStyle": "German",
		"IntervalStyle": "iso_8601", "extra_float_digits": "1", "search_path": "wire_c2, public"}},
}

// client is a raw protocol connection after pgconn's startup and auth.
type client struct {
	conn    net.Conn
	timeout time.Duration
	fe      *pgproto3.Frontend
	params  map[string]string // ParameterStatus seen at startup
	between func() error      // run before each send but the first (contended mode)
}

func dial(ctx context.Context, dsn string, p profile, timeout time.Duration) (*client, error) {
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	for k, v := range p.params {
		cfg.RuntimeParams[k] = v
	}
	pc, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	hc, err := pc.Hijack()
	if err != nil {
		pc.Close(ctx)
		return nil, err
	}
	return &client{conn: hc.Conn, timeout: timeout, fe: hc.Frontend, params: hc.ParameterStatuses}, nil
}

func (c *client) close() {
	c.fe.Send(&pgproto3.Terminate{})
	c.fe.Flush()
	c.conn.Close()
}

// transcript is what one client saw: per until block, the normalised
// backend messages; a read that fails ends it with a "<…>" pseudo-message.
type transcript [][]string

// run plays the script on c. It stops at the first failed read: after a
// timeout the stream is no longer comparable.
func (c *client) run(s *script, schema string) transcript {
	var out transcript
	for i, b := range s.blocks {
		if !b.isUntil {
			if i > 0 && c.between != nil {
				if err := c.between(); err != nil {
					return append(out, []string{"<" + err.Error() + ">"})
				}
			}
			if err := c.send(b.send, schema); err != nil {
				return append(out, []string{"<send failed: " + err.Error() + ">"})
			}
			continue
		}
		msgs, ok := c.until(b)
		if b.unordered {
			sortDataRowRuns(msgs)
		}
		out = append(out, msgs)
		if !ok {
			return out
		}
	}
	return out
}

func (c *client) send(lines []string, schema string) error {
	for _, l := range lines {
		m, err := decodeFrontend(l, schema)
		if err != nil {
			return err
		}
		c.fe.Send(m)
	}
	return c.fe.Flush()
}

// receive reads one backend message within c.timeout; timedOut tells a
// hang (the server said nothing) from a close.
func (c *client) receive() (m pgproto3.BackendMessage, timedOut bool, err error) {
	c.conn.SetReadDeadline(time.Now().Add(c.timeout))
	m, err = c.fe.Receive()
	var ne net.Error
	return m, errors.As(err, &ne) && ne.Timeout(), err
}

// until reads up to and including each target type in turn.
func (c *client) until(b block) ([]string, bool) {
	var msgs []string
	for _, target := range b.until {
		for {
			m, timedOut, err := c.receive()
			if timedOut {
				return append(msgs, fmt.Sprintf("<no answer within %s>", c.timeout)), false
			}
			if err != nil { // a server close is the same event whatever the error text
				return append(msgs, "<closed>"), target == "EOF"
			}
			typ := typeName(m)
			msgs = append(msgs, normalise(m, b.ignore))
			if typ == target {
				break
			}
		}
	}
	return msgs, true
}

func typeName(m pgproto3.BackendMessage) string { return reflect.TypeOf(m).Elem().Name() }

// normalise renders m as JSON with sorted keys, dropping only what must
// differ between two servers or two runs:
//   - ErrorResponse/NoticeResponse File, Line, Routine: source positions;
//   - NotificationResponse PID: the notifying backend's process id;
//   - RowDescription TableOID: tables are recreated for every run, so only
//     "a table column (1) or not (0)" is compared;
//   - BackendKeyData: pgrouter hands out its own keys.
//
// A script adds its own with until ignore=Type.Field (and says why).
func normalise(m pgproto3.BackendMessage, ignore map[string][]string) string {
	typ := typeName(m)
	var v any = m
	if n, ok := m.(*pgproto3.NoticeResponse); ok {
		v = (*pgproto3.ErrorResponse)(n)
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("<%s: %v>", typ, err)
	}
	var mp map[string]any
	json.Unmarshal(raw, &mp)
	mp["Type"] = typ
	switch typ {
	case "ErrorResponse", "NoticeResponse":
		delete(mp, "File")
		delete(mp, "Line")
		delete(mp, "Routine")
		for k, v := range mp { // unset fields only make diffs hard to read
			if v == nil || v == "" || v == float64(0) {
				delete(mp, k)
			}
		}
	case "NotificationResponse":
		delete(mp, "PID")
	case "BackendKeyData":
		mp = map[string]any{"Type": typ}
	case "RowDescription":
		fields, _ := mp["Fields"].([]any)
		for _, f := range fields {
			if fm, ok := f.(map[string]any); ok && fm["TableOID"] != float64(0) {
				fm["TableOID"] = 1
			}
		}
	case "CopyData":
		if d, err := hex.DecodeString(fmt.Sprint(mp["Data"])); err == nil {
			mp["Data"] = string(d)
		}
	}
	for _, f := range ignore[typ] {
		if f == "" {
			mp = map[string]any{"Type": typ}
		} else {
			delete(mp, f)
		}
	}
	out, _ := json.Marshal(mp)
	return string(out)
}

// sortDataRowRuns sorts each run of consecutive DataRows in place.
func sortDataRowRuns(msgs []string) {
	isRow := func(m string) bool { return strings.Contains(m, `"Type":"DataRow"`) }
	for i := 0; i < len(msgs); {
		j := i
		for j < len(msgs) && isRow(msgs[j]) {
			j++
		}
		sort.Strings(msgs[i:j])
		i = max(j, i+1)
	}
}

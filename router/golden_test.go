package router

import (
	"encoding/binary"
	"errors"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgrouter/pgrouter/config"
	"github.com/pgrouter/pgrouter/router/sharding"
)

// goldenFile is one router/testdata/*.yaml: a database config over named
// shards and the cases routed against it.
type goldenFile struct {
	Shards   []string        `yaml:"shards"`
	Database config.Database `yaml:"database"`
	Cases    []goldenCase    `yaml:"cases"`
	// Directory is the in-memory directory of function: directory tables:
	// table → key text → shard name.
	Directory map[string]map[string]string `yaml:"directory"`
	// AllowShardHints is routing.allow_shard_hints (default true).
	AllowShardHints *bool `yaml:"allow_shard_hints"`
}

type goldenCase struct {
	Name string `yaml:"name"`
	SQL  string `yaml:"sql"`
	// Params: "42" (text), "NULL", or "int8:42" / "int4:7" / "int2:3" /
	// "uuid:…" / "text:abc" / "int8[]:1,2" for binary format with that type.
	Params  []string `yaml:"params"`
	OIDs    []uint32 `yaml:"oids"` // Parse parameter types
	Session Session  `yaml:"session"`
	Mode    string   `yaml:"mode"` // simple | extended | "" (both when no params)
	Expect  expect   `yaml:"expect"`
}

type expect struct {
	Shards        []string            `yaml:"shards"`
	ShardsForKeys map[string][]string `yaml:"shards_for_keys"`
	Any           *bool               `yaml:"any"`
	Multi         *bool               `yaml:"multi"`
	Split         *bool               `yaml:"split"`
	Role          string              `yaml:"role"`
	Tx            string              `yaml:"tx"`
	Sets          []SetVar            `yaml:"sets"`
	NoSet         bool                `yaml:"no_set"`
	Pin           string              `yaml:"pin"`
	NoPin         bool                `yaml:"no_pin"`
	Unpin         bool                `yaml:"unpin"`
	SchemaChange  *bool               `yaml:"schema_change"`
	Unparsed      bool                `yaml:"unparsed"`
	Local         *LocalCmd           `yaml:"local"`
	Reason        string              `yaml:"reason"`
	Table         string              `yaml:"table"`
	Copy          *copyExpect         `yaml:"copy"`
	NoCopy        bool                `yaml:"no_copy"`
	Error         *struct {
		Code    string `yaml:"code"`
		Message string `yaml:"message"`
	} `yaml:"error"`
}

// copyExpect is the expected Plan.Copy (format "text"|"csv"|"binary";
// delimiter, quote and escape as one-character strings).
type copyExpect struct {
	Table        string `yaml:"table"`
	Column       string `yaml:"column"`
	KeyType      string `yaml:"key_type"`
	KeyIndex     int    `yaml:"key_index"`
	Columns      int    `yaml:"columns"`
	Reference    bool   `yaml:"reference"`
	Format       string `yaml:"format"`
	Delimiter    string `yaml:"delimiter"`
	Null         string `yaml:"null"`
	Header       bool   `yaml:"header"`
	Quote        string `yaml:"quote"`
	Escape       string `yaml:"escape"`
	ForceNull    bool   `yaml:"force_null"`
	ForceNotNull bool   `yaml:"force_not_null"`
}

var txNames = map[string]TxEffect{"none": TxNone, "begin": TxBegin, "begin_read_only": TxBeginReadOnly,
	"set_read_only": TxSetReadOnly, "commit": TxCommit, "rollback": TxRollback, "prepare": TxPrepare}

func TestGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.yaml")
	if len(files) == 0 {
		t.Fatal("no golden files")
	}
	total := 0
	for _, f := range files {
		g := loadGolden(t, f)
		r, err := New(&g.Database, g.Shards, WithDirectory(newMemDirectory(&g.Database, g.Shards, g.Directory)),
			WithShardHints(g.AllowShardHints == nil || *g.AllowShardHints))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for i := range g.Cases {
			c := &g.Cases[i]
			total++
			t.Run(filepath.Base(f)+"/"+c.Name, func(t *testing.T) { runGolden(t, r, &g, c) })
		}
	}
	t.Logf("%d golden cases", total)
}

func runGolden(t *testing.T, r *Router, g *goldenFile, c *goldenCase) {
	modes := []string{c.Mode}
	if c.Mode == "" {
		modes = []string{"extended"}
		if len(c.Params) == 0 {
			modes = append(modes, "simple")
		}
	}
	for _, m := range modes {
		var p *Plan
		var rt Route
		var err error
		if m == "simple" {
			var sc Scratch
			p, rt, err = r.RouteSimple(c.SQL, c.Session, &sc)
			// the second time must hit the cache and agree
			p2, rt2, err2 := r.RouteSimple(c.SQL, c.Session, &sc)
			if rt2 != rt || (err == nil) != (err2 == nil) || p2.Role != p.Role {
				t.Errorf("simple: second route differs: %+v %v vs %+v %v", rt, err, rt2, err2)
			}
		} else {
			p, _ = r.PrepareFor(c.SQL, c.Session)
			rt, err = r.Route(p, buildArgs(t, c), c.Session)
		}
		checkGolden(t, m, r, g, c, p, rt, err)
	}
}

func checkGolden(t *testing.T, mode string, r *Router, g *goldenFile, c *goldenCase, p *Plan, rt Route, err error) {
	t.Helper()
	e := &c.Expect
	if e.Error != nil {
		var pe *pgconn.PgError
		if !errors.As(err, &pe) {
			t.Fatalf("%s: want error %s, got route %+v err %v", mode, e.Error.Code, rt, err)
		}
		if pe.Code != e.Error.Code || !strings.Contains(pe.Message, e.Error.Message) {
			t.Fatalf("%s: want error %s %q, got %s %q", mode, e.Error.Code, e.Error.Message, pe.Code, pe.Message)
		}
		return
	}
	if err != nil {
		t.Fatalf("%s: unexpected error %v", mode, err)
	}
	want := expectedShards(t, r, g, e)
	if want != nil && rt.Shards != *want {
		t.Errorf("%s: shards = %v, want %v (reason %q)", mode, names(r, rt.Shards), names(r, *want), rt.Reason)
	}
	// With shards given, any/multi/split default to false and are always checked.
	for _, f := range []struct {
		name string
		got  bool
		want *bool
	}{{"any", rt.Any, e.Any}, {"multi", rt.Multi, e.Multi}, {"split", rt.Split, e.Split}} {
		if (f.want != nil && f.got != *f.want) || (f.want == nil && want != nil && f.got) {
			t.Errorf("%s: %s = %v (reason %q)", mode, f.name, f.got, rt.Reason)
		}
	}
	if e.Role != "" && rt.Role.String() != e.Role {
		t.Errorf("%s: role = %v, want %s (why %q)", mode, rt.Role, e.Role, p.a.roleWhy)
	}
	if e.Tx != "" && p.Tx != txNames[e.Tx] {
		t.Errorf("%s: tx = %v, want %s", mode, p.Tx, e.Tx)
	}
	if e.Sets != nil && !slices.Equal(p.Sets, e.Sets) {
		t.Errorf("%s: sets = %+v, want %+v", mode, p.Sets, e.Sets)
	}
	if e.NoSet && len(p.Sets) > 0 {
		t.Errorf("%s: sets = %+v, want none", mode, p.Sets)
	}
	if e.Pin != "" && !strings.Contains(p.Pin, e.Pin) {
		t.Errorf("%s: pin = %q, want %q", mode, p.Pin, e.Pin)
	}
	if e.NoPin && p.Pin != "" {
		t.Errorf("%s: pin = %q, want none", mode, p.Pin)
	}
	if e.Unpin != p.Unpin {
		t.Errorf("%s: unpin = %v", mode, p.Unpin)
	}
	if e.SchemaChange != nil && *e.SchemaChange != p.SchemaChange {
		t.Errorf("%s: schema_change = %v", mode, p.SchemaChange)
	}
	if e.Local != nil && (!p.Local || p.LocalCmd != *e.Local) {
		t.Errorf("%s: local = %v %+v, want %+v", mode, p.Local, p.LocalCmd, *e.Local)
	}
	if e.Local == nil && p.Local {
		t.Errorf("%s: unexpected local %+v", mode, p.LocalCmd)
	}
	if e.Reason != "" && !strings.Contains(rt.Reason, e.Reason) {
		t.Errorf("%s: reason = %q, want %q", mode, rt.Reason, e.Reason)
	}
	if e.Unparsed != p.Unparsed {
		t.Errorf("%s: unparsed = %v", mode, p.Unparsed)
	}
	if e.Table != "" && rt.Table != e.Table {
		t.Errorf("%s: table = %q, want %q", mode, rt.Table, e.Table)
	}
	if e.NoCopy && p.Copy != nil {
		t.Errorf("%s: copy = %+v, want none", mode, *p.Copy)
	}
	if e.Copy != nil {
		checkCopy(t, mode, p, rt, e.Copy)
	}
}

func checkCopy(t *testing.T, mode string, p *Plan, rt Route, w *copyExpect) {
	t.Helper()
	c := p.Copy
	if c == nil {
		t.Fatalf("%s: no Plan.Copy (route %+v)", mode, rt)
	}
	byteStr := func(b byte) string {
		if b == 0 {
			return ""
		}
		return string(rune(b))
	}
	keyType := ""
	if c.KeyType != sharding.TypeInvalid {
		keyType = c.KeyType.String()
	}
	got := copyExpect{Table: c.Table, Column: c.Column, KeyType: keyType, KeyIndex: c.KeyIndex, Columns: c.Columns,
		Reference: c.Reference, Format: c.Format.String(), Delimiter: byteStr(c.Delimiter), Null: c.Null,
		Header: c.Header, Quote: byteStr(c.Quote), Escape: byteStr(c.Escape), ForceNull: c.ForceNull, ForceNotNull: c.ForceNotNull}
	if got != *w {
		t.Errorf("%s: copy = %+v\n want %+v", mode, got, *w)
	}
	if !rt.Copy || rt.Role != RolePrimary {
		t.Errorf("%s: copy route = %+v, want Copy and primary", mode, rt)
	}
}

// expectedShards resolves shard names and shards_for_keys through the
// sharding package itself: the golden files never hard-code hash results.
func expectedShards(t *testing.T, r *Router, g *goldenFile, e *expect) *ShardSet {
	if e.Shards == nil && e.ShardsForKeys == nil {
		return nil
	}
	var s ShardSet
	for _, n := range e.Shards {
		i := slices.Index(g.Shards, n)
		if i < 0 {
			t.Fatalf("unknown shard %q in expectation", n)
		}
		s = s.Add(i)
	}
	for table, keys := range e.ShardsForKeys {
		var ct *config.ShardedTable
		for i := range g.Database.ShardedTables {
			if g.Database.ShardedTables[i].Table == table {
				ct = &g.Database.ShardedTables[i]
			}
		}
		if ct == nil {
			t.Fatalf("shards_for_keys: unknown table %q", table)
		}
		fn, err := sharding.NewWithDirectory(ct, g.Shards, newMemDirectory(&g.Database, g.Shards, g.Directory))
		if err != nil {
			t.Fatal(err)
		}
		typ, _ := sharding.ParseType(ct.Type)
		for _, k := range keys {
			key, err := sharding.KeyFromText(typ, []byte(k))
			if err != nil {
				t.Fatalf("shards_for_keys %s %q: %v", table, k, err)
			}
			i, err := fn.Shard(key)
			if err != nil {
				t.Fatalf("shards_for_keys %s %q: %v", table, k, err)
			}
			s = s.Add(i)
		}
	}
	return &s
}

func buildArgs(t *testing.T, c *goldenCase) Args {
	a := Args{ParamOIDs: c.OIDs}
	binaryAny := false
	for _, p := range c.Params {
		if typ, _, ok := strings.Cut(p, ":"); ok && typeTag(typ) {
			binaryAny = true
		}
	}
	for _, p := range c.Params {
		if p == "NULL" {
			a.Params = append(a.Params, nil)
			a.Formats = append(a.Formats, 0)
			continue
		}
		typ, v, ok := strings.Cut(p, ":")
		if !ok || !typeTag(typ) {
			a.Params = append(a.Params, []byte(p))
			a.Formats = append(a.Formats, 0)
			continue
		}
		a.Params = append(a.Params, encodeBinary(t, typ, v))
		a.Formats = append(a.Formats, 1)
	}
	if !binaryAny {
		a.Formats = nil
	}
	return a
}

func typeTag(s string) bool {
	switch s {
	case "int2", "int4", "int8", "uuid", "text", "int8[]", "text[]":
		return true
	}
	return false
}

func encodeBinary(t *testing.T, typ, v string) []byte {
	switch typ {
	case "int2", "int4", "int8":
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		switch typ {
		case "int2":
			return binary.BigEndian.AppendUint16(nil, uint16(n))
		case "int4":
			return binary.BigEndian.AppendUint32(nil, uint32(n))
		}
		return binary.BigEndian.AppendUint64(nil, uint64(n))
	case "uuid":
		k, err := sharding.KeyFromText(sharding.TypeUUID, []byte(v))
		if err != nil {
			t.Fatal(err)
		}
		return k.Bytes
	case "text":
		return []byte(v)
	case "int8[]", "text[]":
		elems := strings.Split(v, ",")
		oid := uint32(20)
		if typ == "text[]" {
			oid = 25
		}
		b := binary.BigEndian.AppendUint32(nil, 1)
		b = binary.BigEndian.AppendUint32(b, 0)
		b = binary.BigEndian.AppendUint32(b, oid)
		b = binary.BigEndian.AppendUint32(b, uint32(len(elems)))
		b = binary.BigEndian.AppendUint32(b, 1)
		for _, e := range elems {
			var eb []byte
			if typ == "int8[]" {
				eb = encodeBinary(t, "int8", e)
			} else {
				eb = []byte(e)
			}
			b = binary.BigEndian.AppendUint32(b, uint32(len(eb)))
			b = append(b, eb...)
		}
		return b
	}
	t.Fatalf("unknown binary type %q", typ)
	return nil
}

// TestGoldenRejectsUnknownKeys: a misspelt key (here "expcet", or "shard"
// for "shards" inside expect) must fail the load, or the case it belongs to
// would silently check nothing.
func TestGoldenRejectsUnknownKeys(t *testing.T) {
	for name, doc := range map[string]string{
		"case key":   "cases:\n  - name: x\n    sql: select 1\n    expcet: {role: primary}\n",
		"expect key": "cases:\n  - name: x\n    sql: select 1\n    expect: {shard: [s0]}\n",
		"top key":    "shard: [s0]\n",
	} {
		if _, err := decodeGolden([]byte(doc)); err == nil {
			t.Errorf("%s: unknown key accepted:\n%s", name, doc)
		} else if !strings.Contains(err.Error(), "not found") {
			t.Errorf("%s: want a 'field … not found' error, got %v", name, err)
		}
	}
}

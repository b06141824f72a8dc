package config

import (
	"errors"
	"strings"
	"testing"
)

// tableBase ends inside a sharded table entry; table() appends its remaining
// keys starting at line 14.
const tableBase = `users:
  - name: app
    password: pw
shards:
  - name: s0
    primary: 127.0.0.1:5432
  - name: s1
    primary: 127.0.0.1:5433
databases:
  - name: app
    sharded_tables:
      - table: t
        column: id
`

func table(lines ...string) string {
	return tableBase + "        " + strings.Join(lines, "\n        ") + "\n"
}

// replace swaps one line of a base document, keeping line numbers.
func replace(base, old, new string) string {
	if !strings.Contains(base, old) {
		panic("replace: " + old + " not in base")
	}
	return strings.Replace(base, old, new, 1)
}

func TestErrorClasses(t *testing.T) {
	cases := []struct {
		name string
		yml  string
		line int
		key  string
		msg  string
	}{
		// structure
		{"yaml syntax", "users: [\n  - x\n", 0, "", "did not find"},
		{"empty file", "# nothing\n", 0, "", "empty"},
		{"alias bomb", aliasBomb(), 0, "", "too many nodes"},
		{"top level not a mapping", "- a\n- b\n", 1, "", "top level must be a mapping"},
		{"unknown top-level key", "lisen: x\n" + minimal, 1, "lisen", "unknown key"},
		{"unknown nested key", replace(minimal, "    primary: 127.0.0.1:5432", "    primary: {adr: 127.0.0.1:5432}"), 6, "shards[0].primary.adr", "valid keys here: name, addr, weight"},
		{"duplicate mapping key", replace(minimal, "    password: pw", "    password: pw\n    name: again"), 4, "users[0].name", `key written twice (first at line 2)`},
		{"bool type", replace(minimal, "    password: pw", "    password: pw\n    admin: yes please"), 4, "users[0].admin", `want true or false, got "yes please"`},
		{"list where a mapping belongs", "pool: [1]\n" + minimal, 1, "pool", "want a mapping of keys (mode, size"},
		{"scalar where a list belongs", replace(minimal, "users:\n  - name: app\n    password: pw\n", "users: app\n"), 1, "users", "want a list"},
		{"type error", "pool: {size: lots}\n" + minimal, 1, "pool.size", `want an integer, got "lots"`},
		{"bad duration", "pool:\n  acquire_timeout: 5\n" + minimal, 2, "pool.acquire_timeout", `invalid duration "5"`},
		{"node as a list", replace(minimal, "    primary: 127.0.0.1:5432", "    primary: [a, b]"), 6, "shards[0].primary", `want "host:port" or a mapping`},
		{"bad duration in a flow mapping", "pool: {size: 3, acquire_timeout: soon}\n" + minimal, 1, "pool.acquire_timeout", `invalid duration "soon"`},
		{"no users", strings.Replace(minimal, "users:\n  - name: app\n    password: pw\n", "users: []\n", 1), 1, "users", "at least one user"},
		{"no shards", "shards: []\n" + strings.Replace(minimal, "shards:\n  - name: s0\n    primary: 127.0.0.1:5432\n", "", 1), 1, "shards", "at least one shard"},
		{"no databases", strings.TrimSuffix(minimal, "databases:\n  - name: app\n"), 1, "databases", "at least one database"},
		// addresses
		{"listen not host:port", "listen: localhost\n" + minimal, 1, "listen", `invalid address "localhost"`},
		{"metrics port", "metrics: {listen: '127.0.0.1:99999'}\n" + minimal, 1, "metrics.listen", "port must be"},
		{"node without host", replace(minimal, "127.0.0.1:5432", ":5432"), 6, "shards[0].primary.addr", "host is missing"},
		{"node without addr", replace(minimal, "    primary: 127.0.0.1:5432", "    primary: {name: p}"), 6, "shards[0].primary.addr", "address is required"},
		{"same primary twice", replace(baseTwoShards, "127.0.0.1:5433", "127.0.0.1:5432"), 8, "shards[1].primary", `duplicate primary address "127.0.0.1:5432" (first at line 6)`},
		// limits
		{"max_message_size too small", "limits: {max_message_size: 100}\n" + minimal, 1, "limits.max_message_size", "must be between 1024 and 1073741823"},
		{"max_message_size beyond Postgres", "limits: {max_message_size: 2147483647}\n" + minimal, 1, "limits.max_message_size", "Postgres's limit"},
		{"auth_failures negative", "limits: {auth_failures: -1}\n" + minimal, 1, "limits.auth_failures", "must be"},
		{"auth_failure_window zero", "limits: {auth_failure_window: 0s}\n" + minimal, 1, "limits.auth_failure_window", "must be a positive duration"},
		{"pprof not a bool", "metrics: {pprof: sometimes}\n" + minimal, 1, "metrics.pprof", "want true or false"},
		{"fence without a budget", "cluster: {fence: true}\n" + minimal, 1, "cluster.fence", "guards cluster.pool_budget"},
		// duplicates
		{"duplicate user", replace(minimal, "    password: pw", "    password: pw\n  - name: app\n    password: pw2"), 4, "users[1].name", `duplicate user name "app" (first at line 2)`},
		{"duplicate shard", replace(baseTwoShards, "name: s1", "name: s0"), 7, "shards[1].name", `duplicate shard name "s0" (first at line 5)`},
		{"duplicate node", replace(baseTwoShards, "    primary: 127.0.0.1:5433", "    primary: {name: s0-primary, addr: '127.0.0.1:5433'}"), 8, "shards[1].primary.name", `duplicate node name "s0-primary" (first at line 6)`},
		{"duplicate database", minimal + "  - name: app\n", 9, "databases[1].name", `duplicate database name "app" (first at line 8)`},
		{"duplicate sharded table", tableBase + "        type: int\n      - table: T\n        column: id\n        type: int\n", 15, "databases[0].sharded_tables[1].table", `duplicate table "t" (first at line 12)`},
		{"reference table also sharded", tableBase + "        type: int\n    reference_tables: [t]\n", 15, "databases[0].reference_tables[0]", `duplicate table "t"`},
		{"reserved database name", replace(minimal, "databases:\n  - name: app", "databases:\n  - name: pgrouter"), 8, "databases[0].name", "reserved for the admin console"},
		// enums
		{"pool.mode", "pool: {mode: statement}\n" + minimal, 1, "pool.mode", `invalid value "statement": must be one of transaction, session`},
		{"auth", replace(minimal, "    password: pw", "    password: pw\n    auth: plain"), 4, "users[0].auth", "must be one of scram-sha-256, md5, trust"},
		{"replicas.strategy", "replicas: {strategy: fastest}\n" + minimal, 1, "replicas.strategy", "round_robin, random"},
		{"shard strategy", replace(minimal, "    primary: 127.0.0.1:5432", "    primary: 127.0.0.1:5432\n    strategy: fastest"), 7, "shards[0].strategy", "must be one of"},
		{"fallback", "replicas: {fallback: nowhere}\n" + minimal, 1, "replicas.fallback", "primary, error"},
		{"default_role", replace(minimal, "    password: pw", "    password: pw\n    default_role: standby"), 4, "users[0].default_role", "auto, primary, replica"},
		{"key type", table("type: bigint"), 14, "databases[0].sharded_tables[0].type", "int, text, uuid"},
		{"function", table("type: int", "function: modulo"), 15, "databases[0].sharded_tables[0].function", "hash, range, list, directory"},
		{"cross_shard", minimal + "    cross_shard: maybe\n", 9, "databases[0].cross_shard", "allow, deny"},
		{"reference_writes", minimal + "    reference_writes: yolo\n", 9, "databases[0].reference_writes", "refuse, best_effort"},
		{"unlisted_tables value", minimal + "    unlisted_tables: ignore\n", 9, "databases[0].unlisted_tables", "error, reference or shard:NAME"},
		{"unlisted_tables shard", minimal + "    unlisted_tables: shard:s9\n", 9, "databases[0].unlisted_tables", `unknown shard "s9" (shards: s0)`},
		// function shapes
		{"range without ranges", table("type: int", "function: range"), 15, "databases[0].sharded_tables[0].function", "function range needs a ranges list"},
		{"list without lists", table("type: text", "function: list"), 15, "databases[0].sharded_tables[0].function", "function list needs a lists list"},
		{"directory without directory", table("type: int", "function: directory"), 15, "databases[0].sharded_tables[0].function", "needs a directory section"},
		{"directory without node", table("type: int", "function: directory", "directory: {cache_size: 10}"), 16, "databases[0].sharded_tables[0].directory.node", "is required"},
		{"directory unknown node name", table("type: int", "function: directory", "directory: {node: nowhere}"), 16, "databases[0].sharded_tables[0].directory.node", `unknown node "nowhere"`},
		{"directory unknown user", table("type: int", "function: directory", "directory: {node: s0-primary, user: ghost}"), 16, "databases[0].sharded_tables[0].directory.user", `unknown user "ghost"`},
		{"directory zero timeout", table("type: int", "function: directory", "directory: {node: s0-primary, timeout: 0s}"), 16, "databases[0].sharded_tables[0].directory.timeout", "must be > 0"},
		{"hash with ranges", table("type: int", "ranges: [{from: '1', shard: s0}]"), 15, "databases[0].sharded_tables[0].ranges", "only used with function range"},
		{"hash with lists", table("type: int", "function: hash", "lists: [{values: ['1'], shard: s0}]"), 16, "databases[0].sharded_tables[0].lists", "only used with function list"},
		{"hash with default", table("type: int", "default: s0"), 15, "databases[0].sharded_tables[0].default", "only used with function range or list"},
		// shard references
		{"range shard unknown", table("type: int", "function: range", "ranges:", "  - {from: '0', shard: s7}"), 17, "databases[0].sharded_tables[0].ranges[0].shard", `unknown shard "s7" (shards: s0, s1)`},
		{"range shard missing", table("type: int", "function: range", "ranges:", "  - {from: '0'}"), 17, "databases[0].sharded_tables[0].ranges[0].shard", "a shard name is required"},
		{"list shard unknown", table("type: int", "function: list", "lists:", "  - {values: [1], shard: s7}"), 17, "databases[0].sharded_tables[0].lists[0].shard", `unknown shard "s7"`},
		{"default unknown", table("type: int", "function: list", "lists: [{values: [1], shard: s0}]", "default: s7"), 17, "databases[0].sharded_tables[0].default", `unknown shard "s7"`},
		{"null_shard unknown", table("type: int", "null_shard: s7"), 15, "databases[0].sharded_tables[0].null_shard", `unknown shard "s7"`},
		// range bounds
		{"int bound", table("type: int", "function: range", "ranges:", "  - {from: '0', to: ten, shard: s0}"), 17, "databases[0].sharded_tables[0].ranges[0].to", `invalid int bound "ten"`},
		{"uuid bound", table("type: uuid", "function: range", "ranges:", "  - {from: 'zz', shard: s0}"), 17, "databases[0].sharded_tables[0].ranges[0].from", `invalid uuid bound "zz"`},
		{"empty range", table("type: int", "function: range", "ranges:", "  - {from: '10', to: '10', shard: s0}"), 17, "databases[0].sharded_tables[0].ranges[0]", "empty range"},
		{"text range order", table("type: text", "function: range", "ranges:", "  - {from: b, to: a, shard: s0}"), 17, "databases[0].sharded_tables[0].ranges[0]", `from "b" must be below to "a"`},
		{"overlap", table("type: int", "function: range", "ranges:", "  - {from: '0', to: '100', shard: s0}", "  - {from: '50', shard: s1}"), 18, "databases[0].sharded_tables[0].ranges[1].from", `overlaps ranges[0], which ends at "100"`},
		{"gap", table("type: int", "function: range", "ranges:", "  - {to: '100', shard: s0}", "  - {from: '200', shard: s1}"), 18, "databases[0].sharded_tables[0].ranges[1].from", `gap: keys from "100" up to "200"`},
		{"open end in the middle", table("type: int", "function: range", "ranges:", "  - {from: '0', shard: s0}", "  - {from: '200', shard: s1}"), 18, "databases[0].sharded_tables[0].ranges[1]", "has no upper bound"},
		{"descending", table("type: int", "function: range", "ranges:", "  - {from: '100', to: '200', shard: s0}", "  - {from: '0', to: '100', shard: s1}"), 18, "databases[0].sharded_tables[0].ranges[1].from", "ascending order"},
		{"uuid overlap", table("type: uuid", "function: range", "ranges:", "  - {to: '80000000-0000-0000-0000-000000000000', shard: s0}", "  - {from: '7fffffff-ffff-ffff-ffff-ffffffffffff', shard: s1}"), 18, "databases[0].sharded_tables[0].ranges[1].from", "overlaps ranges[0]"},
		// list values
		{"list int value", table("type: int", "function: list", "lists:", "  - {values: [1, x], shard: s0}"), 17, "databases[0].sharded_tables[0].lists[0].values[1]", `invalid int value "x"`},
		{"list value twice", table("type: int", "function: list", "lists:", "  - {values: [1, 2], shard: s0}", "  - values: ['02']", "    shard: s1"), 18, "databases[0].sharded_tables[0].lists[1].values[0]", `value "02" is listed twice (first at line 17)`},
		{"list uuid twice", table("type: uuid", "function: list", "lists:", "  - {values: ['A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'], shard: s0}", "  - {values: ['{a0eebc999c0b4ef8bb6d6bb9bd380a11}'], shard: s1}"), 18, "databases[0].sharded_tables[0].lists[1].values[0]", "listed twice"},
		{"list empty values", table("type: int", "function: list", "lists:", "  - {values: [], shard: s0}"), 17, "databases[0].sharded_tables[0].lists[0].values", "at least one value"},
		// sizes and thresholds
		{"pool size", "pool: {size: 0}\n" + minimal, 1, "pool.size", "must be ≥ 1, got 0"},
		{"min_idle above size", "pool: {size: 5, min_idle: 6}\n" + minimal, 1, "pool.min_idle", "must not exceed size"},
		{"user pool size", replace(minimal, "    password: pw", "    password: pw\n    pool_size: -1"), 4, "users[0].pool_size", "must be ≥ 1"},
		{"fail_threshold", "health: {fail_threshold: 0}\n" + minimal, 1, "health.fail_threshold", "must be ≥ 1"},
		{"negative lag bytes", "replicas: {max_lag_bytes: -1}\n" + minimal, 1, "replicas.max_lag_bytes", "must be ≥ 0"},
		{"negative duration", "log: {slow_query: -1s}\n" + minimal, 1, "log.slow_query", "must not be negative"},
		{"zero interval", "health: {interval: 0s}\n" + minimal, 1, "health.interval", "positive duration"},
		{"weight", replace(minimal, "    primary: 127.0.0.1:5432", "    primary: {addr: '127.0.0.1:5432', weight: 0}"), 6, "shards[0].primary.weight", "must be ≥ 1"},
		// auth
		{"scram without password", replace(minimal, "    password: pw\n", ""), 2, "users[0].password", "auth scram-sha-256 needs a password"},
		{"md5 without password", replace(minimal, "    password: pw", "    auth: md5"), 2, "users[0].password", "auth md5 needs a password"},
		{"verifier without server_password", replace(minimal, "password: pw", "password: 'SCRAM-SHA-256$4096:c2FsdA==$c3Q=:c2s='"), 2, "users[0].server_password", "required when password is a SCRAM verifier"},
		{"md5 with verifier", replace(minimal, "password: pw", "password: 'SCRAM-SHA-256$4096:c2FsdA==$c3Q=:c2s='\n    server_password: x\n    auth: md5"), 3, "users[0].password", "cannot check md5 logins"},
		{"tls half", "tls: {cert_file: a.crt}\n" + minimal, 1, "tls", "cert_file and key_file must be given together"},
		{"bad shard name", replace(minimal, "name: s0", "name: 's 0'"), 5, "shards[0].name", "invalid name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yml), "p.yaml")
			e := findError(t, err, tc.key, tc.msg)
			if e == nil {
				return
			}
			if tc.line > 0 && e.Line != tc.line {
				t.Errorf("line = %d, want %d (%v)", e.Line, tc.line, e)
			}
			if e.File != "p.yaml" {
				t.Errorf("file = %q", e.File)
			}
		})
	}
}

// findError returns the error with that key whose message contains msg.
func findError(t *testing.T, err error, key, msg string) *Error {
	t.Helper()
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("want Errors, got %v", err)
	}
	for _, e := range errs {
		if e.Key == key && strings.Contains(e.Msg, msg) {
			return e
		}
	}
	t.Errorf("no error with key %q and message containing %q; got:\n%v", key, msg, err)
	return nil
}

func TestValidVariants(t *testing.T) {
	cases := map[string]string{
		"gap allowed with default": table("type: int", "function: range", "default: s1", "ranges:", "  - {to: '100', shard: s0}", "  - {from: '200', shard: s1}"),
		"contiguous text ranges":   table("type: text", "function: range", "ranges:", "  - {to: m, shard: s0}", "  - {from: m, shard: s1}"),
		"uuid list":                table("type: uuid", "function: list", "lists:", "  - {values: ['a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'], shard: s0}"),
		"directory":                table("type: int", "function: directory", "directory: {node: '127.0.0.1:5440', auto_assign: hash}"),
		"directory on a node name": table("type: int", "function: directory", "directory: {node: s1-primary}"),
		"trust without password":   replace(minimal, "    password: pw", "    auth: trust"),
		"verifier with server pw":  replace(minimal, "password: pw", "password: 'SCRAM-SHA-256$4096:c2FsdA==$c3Q=:c2s='\n    server_password: pw"),
		"metrics off":              "metrics: {listen: 'off'}\n" + minimal,
		"listen all interfaces":    "listen: ':6432'\n" + minimal,
		"merge keys":               "x-node: &n {weight: 2}\n" + replace(minimal, "    primary: 127.0.0.1:5432", "    primary: {<<: *n, addr: '127.0.0.1:5432'}"),
	}
	for name, yml := range cases {
		t.Run(name, func(t *testing.T) {
			if name == "merge keys" {
				// x-node is not a config key: unknown keys are rejected even there.
				_, err := Parse([]byte(yml), "p.yaml")
				findError(t, err, "x-node", "unknown key")
				return
			}
			mustParse(t, yml)
		})
	}
	dir := mustParse(t, cases["directory"]).Databases[0].ShardedTables[0].Directory
	if dir.Dbname != "app" || dir.Query != DefaultDirectoryQuery || dir.CacheSize != 100000 || dir.CacheTTL.D().Seconds() != 60 ||
		dir.AssignQuery != DefaultDirectoryAssignQuery || dir.Timeout.D().Seconds() != 5 || dir.PoolSize != 4 {
		t.Errorf("directory defaults: %+v", dir)
	}
}

// TestAllErrorsAtOnce: one run reports every problem, sorted by line, and
// a key that failed to decode does not also produce follow-up noise.
func TestAllErrorsAtOnce(t *testing.T) {
	yml := "pool: {size: lots, mode: x}\nlisen: 1\n" + replace(baseTwoShards, "name: s1", "name: s0")
	_, err := Parse([]byte(yml), "p.yaml")
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("got %v", err)
	}
	want := []string{
		"p.yaml:1: pool.size: want an integer",
		"p.yaml:1: pool.mode: invalid value",
		"p.yaml:2: lisen: unknown key",
		"p.yaml:9: shards[1].name: duplicate shard name \"s0\" (first at line 7)",
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(lines), len(want), err)
	}
	for i := range want {
		if !strings.HasPrefix(lines[i], want[i]) {
			t.Errorf("error %d = %q, want prefix %q", i, lines[i], want[i])
		}
	}
}

// aliasBomb nests aliases so that following them visits 10^9 nodes.
func aliasBomb() string {
	var b strings.Builder
	b.WriteString("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i <= 9; i++ {
		p := "*a" + string(rune('0'+i-1))
		b.WriteString("a" + string(rune('0'+i)) + ": &a" + string(rune('0'+i)) + " [" + strings.Repeat(p+", ", 9) + p + "]\n")
	}
	return b.String()
}

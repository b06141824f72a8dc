package reshard

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgrouter/pgrouter/config"
	"github.com/pgrouter/pgrouter/router"
	"github.com/pgrouter/pgrouter/test/testenv"
)

// engineKeys is how many keys the load works on; keys above it (up to
// extraKeys more) are the tests' own, which the load never touches.
const (
	engineKeys = 10000
	extraKeys  = 200
	evKeys     = 2000 // keys of ev, the range-sharded table
)

// evRanges and evSplit are ev's ranges before and after its range split:
// [500, 1000) moves from shard0 to shard2.
const (
	evRanges = `[{from: "0", to: "1000", shard: shard0}, {from: "1000", shard: shard1}]`
	evSplit  = `[{from: "0", to: "500", shard: shard0}, {from: "500", to: "1000", shard: shard2}, {from: "1000", shard: shard1}]`
)

// engineEnv is a 3-shard cluster (shard2 a spare) served by a real
// pgrouter process (bin/pgrouter serve), so tests can kill -9 it.
type engineEnv struct {
	*testenv.Env
	bin     string
	dir     string // config file, next config, data_dir
	path    string // the config file the process serves
	base    string // its text before any reshard
	dataDir string
	proc    *exec.Cmd
	addr    string
	metrics string // the metrics endpoint's address
	logf    *os.File
}

func startEngineEnv(ctx context.Context, t *testing.T) *engineEnv {
	t.Helper()
	e, err := testenv.Start(ctx, testenv.Options{
		Shards: 3, Replicas: 1,
		Hash: []string{"[{modulus: 2, remainder: 0}]", "[{modulus: 2, remainder: 1}]", "[]"},
		Sections: map[string]string{
			"db": "    sharded_tables:\n      - {table: kv, column: id, type: int, function: hash}\n" +
				"      - {table: ev, column: id, type: int, function: range, ranges: " + evRanges + "}\n" +
				"      - {table: dkv, column: id, type: int, function: directory, directory: {node: shard0-primary, cache_ttl: 1h}}",
			"pool": "  size: 16",
		},
	})
	if err != nil {
		t.Fatalf("test environment: %v", err)
	}
	t.Cleanup(e.Close)
	closeCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	e.Proxy.Close(closeCtx) // the process serves instead
	cancel()
	ee := &engineEnv{Env: e, bin: testenv.BuildPgrouter(t), dir: t.TempDir()}
	src, err := os.ReadFile(e.Path)
	if err != nil {
		t.Fatal(err)
	}
	ee.addr = testenv.FreeAddr(t)
	ee.dataDir = filepath.Join(ee.dir, "data")
	ee.base = strings.Replace(string(src), "listen: 127.0.0.1:0\n", "listen: "+ee.addr+"\ndata_dir: "+ee.dataDir+"\n", 1)
	ee.metrics = testenv.FreeAddr(t)
	ee.base = strings.Replace(ee.base, "  listen: 127.0.0.1:0\n", "  listen: "+ee.metrics+"\n", 1)
	ee.path = filepath.Join(ee.dir, "pgrouter.yaml")
	t.Cleanup(ee.kill)
	return ee
}

// nextYAML is the base config with shard0 split: remainder 2 of modulus 4
// moves to the spare shard2.
func (ee *engineEnv) nextYAML(t *testing.T) string {
	t.Helper()
	next := strings.Replace(ee.base, "hash: [{modulus: 2, remainder: 0}]", "hash: [{modulus: 4, remainder: 0}]", 1)
	next = strings.Replace(next, "hash: []", "hash: [{modulus: 4, remainder: 2}]", 1)
	return ee.writeNext(t, next)
}

// rangeNextYAML is the base config with ev's range [500, 1000) moved to
// shard2.
func (ee *engineEnv) rangeNextYAML(t *testing.T) string {
	t.Helper()
	if !strings.Contains(ee.base, evRanges) {
		t.Fatal("the base config lost ev's ranges")
	}
	return ee.writeNext(t, strings.Replace(ee.base, evRanges, evSplit, 1))
}

func (ee *engineEnv) writeNext(t *testing.T, next string) string {
	t.Helper()
	path := filepath.Join(ee.dir, "next.yaml")
	if err := os.WriteFile(path, []byte(next), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// reset stops pgrouter, recreates kv with keys 1..engineKeys (v = 0) on the
// shards the base placement names, clears data_dir and starts pgrouter.
func (ee *engineEnv) reset(ctx context.Context, t *testing.T) {
	t.Helper()
	ee.kill()
	ee.refill(ctx, t)
	ee.start(t)
}

// refill is reset without the pgrouter process: the config file holds the
// base placement, the tables their first rows.
func (ee *engineEnv) refill(ctx context.Context, t *testing.T) {
	t.Helper()
	for _, p := range []string{ee.dataDir, filepath.Join(ee.dir, "pgrouter.log")} {
		if err := os.RemoveAll(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(ee.path, []byte(ee.base), 0o600); err != nil {
		t.Fatal(err)
	}
	for table, keys := range map[string]int64{"kv": engineKeys + extraKeys, "ev": evKeys} {
		ee.fill(ctx, t, table, keys)
	}
	ee.fillDirectory(ctx, t)
	if err := ee.Cluster.WaitReplicated(ctx); err != nil {
		t.Fatal(err)
	}
}

// fill recreates table with keys 1..keys (v = 0) on the shards the base
// placement names.
func (ee *engineEnv) fill(ctx context.Context, t *testing.T, table string, keys int64) {
	t.Helper()
	if err := ee.ExecOnPrimaries(ctx, "app", fmt.Sprintf("DROP TABLE IF EXISTS %s; CREATE TABLE %s (id bigint PRIMARY KEY, v bigint NOT NULL, pad text)", table, table)); err != nil {
		t.Fatal(err)
	}
	insertByPlacement(ctx, t, ee.Env, ee.router(t, ee.path), table, keys,
		"INSERT INTO "+table+" SELECT id, 0, repeat('x', 100) FROM unnest($1::int8[]) id")
	if err := ee.ExecOnPrimaries(ctx, "app", "ANALYZE "+table); err != nil {
		t.Fatal(err)
	}
}

// dkvKeys is how many keys the directory-sharded table dkv holds: even
// keys on shard0, odd ones on shard1, as its lookup table (on shard0's
// primary) says.
const dkvKeys = 400

func (ee *engineEnv) fillDirectory(ctx context.Context, t *testing.T) {
	t.Helper()
	if err := ee.ExecOnPrimaries(ctx, "app", "DROP TABLE IF EXISTS dkv, pgrouter_directory; CREATE TABLE dkv (id bigint PRIMARY KEY, v bigint NOT NULL, pad text); "+
		"CREATE TABLE pgrouter_directory (key text PRIMARY KEY, shard text NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		c, err := ee.Cluster.Shards[i].Primary.Connect(ctx, "app")
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Exec(ctx, "INSERT INTO dkv SELECT id, 0, 'x' FROM generate_series(1, $1) id WHERE id % 2 = $2", dkvKeys, i)
		if err == nil && i == 0 {
			_, err = c.Exec(ctx, "INSERT INTO pgrouter_directory SELECT id::text, 'shard' || (id % 2) FROM generate_series(1, $1) id", dkvKeys)
		}
		c.Close(ctx)
		if err != nil {
			t.Fatal(err)
		}
	}
}

// dkvShards is where the lookup table places dkv's keys now.
func (ee *engineEnv) dkvShards(ctx context.Context, t *testing.T) map[int64]int {
	t.Helper()
	c, err := ee.Cluster.Shards[0].Primary.Connect(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	out := map[int64]int{}
	rows, _ := c.Query(ctx, "SELECT key::bigint, substr(shard, 6)::int FROM pgrouter_directory")
	var k int64
	var s int
	if _, err := pgx.ForEachRow(rows, []any{&k, &s}, func() error { out[k] = s; return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// router places keys as the config file at path says.
func (ee *engineEnv) router(t *testing.T, path string) *router.Router {
	t.Helper()
	return mustRouter(t, ee.routerConfig(t, path))
}

func (ee *engineEnv) routerConfig(t *testing.T, path string) *config.Config {
	t.Helper()
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// start runs pgrouter serve on the config file and waits until it listens.
func (ee *engineEnv) start(t *testing.T) {
	t.Helper()
	logf, err := os.OpenFile(filepath.Join(ee.dir, "pgrouter.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(ee.bin, "serve", "--config", ee.path, "--log-level", "debug")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ee.proc, ee.logf = cmd, logf
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := net.Dial("tcp", ee.addr)
		if err == nil {
			c.Close()
			return
		}
		if cmd.ProcessState != nil || time.Now().After(deadline) {
			out, _ := os.ReadFile(filepath.Join(ee.dir, "pgrouter.log"))
			t.Fatalf("pgrouter did not start listening on %s:\n%s", ee.addr, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill sends SIGKILL: no shutdown code runs.
func (ee *engineEnv) kill() {
	if ee.proc != nil && ee.proc.ProcessState == nil {
		ee.proc.Process.Kill()
		ee.proc.Wait()
	}
	if ee.logf != nil {
		ee.logf.Close()
	}
	ee.proc, ee.logf = nil, nil
}

func (ee *engineEnv) connect(ctx context.Context, t *testing.T, user, db string, simple bool) *pgx.Conn {
	t.Helper()
	return dial(ctx, t, fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable", user, user, ee.addr, db), simple)
}

// admin runs one admin console command; one that hangs fails the test
// with pgrouter's goroutines in the log.
func (ee *engineEnv) admin(ctx context.Context, t *testing.T, cmd string) error {
	t.Helper()
	c := ee.connect(ctx, t, "admin", "pgrouter", true)
	defer c.Close(ctx)
	actx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	_, err := c.Exec(actx, cmd)
	if actx.Err() != nil {
		ee.dumpStacks()
		t.Fatalf("%s did not answer within a minute (stacks in %s)", cmd, stuckLog)
	}
	return err
}

// stuckLog keeps pgrouter's log with its goroutines' stacks when a test
// found it stuck.
var stuckLog = filepath.Join(os.TempDir(), "reshard-stuck.log")

func (ee *engineEnv) dumpStacks() {
	if ee.proc == nil {
		return
	}
	ee.proc.Process.Signal(syscall.SIGQUIT)
	ee.proc.Wait()
	os.WriteFile(stuckLog, mustRead(filepath.Join(ee.dir, "pgrouter.log")), 0o600)
}

// status is the row of SHOW RESHARD.
func (ee *engineEnv) status(ctx context.Context, t *testing.T) map[string]string {
	t.Helper()
	c := ee.connect(ctx, t, "admin", "pgrouter", true)
	defer c.Close(ctx)
	rows, err := c.Query(ctx, "SHOW RESHARD")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		for i, f := range rows.FieldDescriptions() {
			out[f.Name] = fmt.Sprint(vals[i])
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// waitStatus polls SHOW RESHARD until cond holds; it fails on timeout.
func (ee *engineEnv) waitStatus(ctx context.Context, t *testing.T, what string, d time.Duration, cond func(map[string]string) bool) map[string]string {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		st := ee.status(ctx, t)
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			ee.dumpStacks()
			log, _ := os.ReadFile(filepath.Join(ee.dir, "pgrouter.log"))
			var tail []string
			for _, l := range strings.Split(string(log), "\n") {
				if !strings.Contains(l, "client connected") && !strings.Contains(l, "client disconnected") {
					tail = append(tail, l)
				}
			}
			if len(tail) > 30 {
				tail = tail[len(tail)-30:]
			}
			t.Fatalf("timed out waiting for %s; SHOW RESHARD: %v\npgrouter's log ends:\n%s", what, st, strings.Join(tail, "\n"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// metric reads one sample line's value from pgrouter's /metrics ("" when
// absent): name with its labels, as Prometheus prints them.
func (ee *engineEnv) metric(t *testing.T, series string) string {
	t.Helper()
	resp, err := http.Get("http://" + ee.metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, l := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			return v
		}
	}
	return ""
}

func mustRead(path string) []byte {
	b, _ := os.ReadFile(path)
	return b
}

func phaseIs(p string) func(map[string]string) bool {
	return func(st map[string]string) bool { return st["phase"] == p && st["running"] == "false" }
}

// savedState reads the engine's persisted state.
func (ee *engineEnv) savedState(t *testing.T) (st struct {
	Phase string `json:"phase"`
	Moves []struct {
		Done []bool `json:"done"`
	} `json:"moves"`
}) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(ee.dataDir, "reshard", "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// shardRows reads table directly from shard i's primary: id → v.
func (ee *engineEnv) shardRows(ctx context.Context, t *testing.T, i int, table string) map[int64]int64 {
	t.Helper()
	c, err := ee.Cluster.Shards[i].Primary.Connect(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.WithoutCancel(ctx))
	out := map[int64]int64{}
	rows, _ := c.Query(ctx, "SELECT id, v FROM "+table)
	var id, v int64
	if _, err := pgx.ForEachRow(rows, []any{&id, &v}, func() error { out[id] = v; return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// onShard runs sql directly on shard i's primary and returns one int.
func (ee *engineEnv) onShard(ctx context.Context, t *testing.T, i int, sql string, args ...any) int64 {
	t.Helper()
	c, err := ee.Cluster.Shards[i].Primary.Connect(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.WithoutCancel(ctx))
	var n int64
	if err := c.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

package twophase

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// TestPythonDriverBatches runs what Python applications send for batches
// and nested transactions — psycopg 3 executemany (plain, in a transaction,
// prepared, with RETURNING) and pipeline mode, psycopg2 execute_batch (statements joined
// with ';'), asyncpg executemany, savepoints of psycopg 3 and asyncpg — with
// keys on both shards, and checks every row on its shard.
func TestPythonDriverBatches(t *testing.T) {
	const py = "/usr/bin/python3"
	if out, err := exec.Command(py, "-c", "import psycopg, psycopg2, asyncpg").CombinedOutput(); err != nil {
		t.Fatalf("Python drivers missing (%v: %s): run `make deps` as root (Debian packages python3-psycopg, python3-psycopg2, python3-asyncpg)", err, out)
	}
	type want struct{ result, present, absent string } // present/absent: key indexes
	cases := map[string]want{
		"pg3_executemany_autocommit": {"ok", "0123", ""},
		"pg3_executemany_tx":         {"ok", "0123", ""},
		"pg3_executemany_returning":  {"ok", "0123", ""},
		"pg3_pipeline":               {"ok", "0123", ""},
		"pg3_savepoints":             {"ok", "02", "1"},
		"pg3_prepared_executemany":   {"ok", "0123", ""},
		"pg2_execute_batch":          {"ok", "0123", ""},
		"pg2_execute_batch_tx":       {"ok", "0123", ""},
		"pg2_execute_batch_dup":      {"ERROR 23505", "", "012"},
		"asyncpg_executemany":        {"ok", "0123", ""},
		"asyncpg_savepoints":         {"ok", "02", "1"},
	}
	keys := map[string][]int64{}
	shardOf := map[int64]int{}
	base := int64(500000)
	for name := range cases {
		a, b := keysOn(t, 0, base, 2), keysOn(t, 1, base, 2)
		base += 1000
		keys[name] = []int64{a[0], b[0], b[1], a[1]}
		for _, k := range a {
			shardOf[k] = 0
		}
		for _, k := range b {
			shardOf[k] = 1
		}
	}
	dup := keys["pg2_execute_batch_dup"][3]
	takeKey(t, 0, dup)
	arg, _ := json.Marshal(keys)
	cmd := exec.Command(py, "testdata/batches.py", env.AppDSN(), string(arg))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("batches.py: %v\n%s", err, out)
	}
	var got map[string]string
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("batches.py output %q: %v", out, err)
	}
	for name, w := range cases {
		if got[name] != w.result {
			t.Errorf("%s: %q, want %q", name, got[name], w.result)
			continue
		}
		for _, set := range []struct {
			idx  string
			want int
		}{{w.present, 1}, {w.absent, 0}} {
			for _, c := range set.idx {
				k := keys[name][c-'0']
				if n := countOn(t, shardOf[k], "users", []int64{k}); n != set.want {
					t.Errorf("%s: key %d (index %c) on shard%d: %d row(s), want %d", name, k, c, shardOf[k], n, set.want)
				}
			}
		}
	}
	assertNoPrepared(t)
	if t.Failed() {
		t.Logf("results: %s", strings.TrimSpace(string(out)))
	}
}

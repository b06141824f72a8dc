package main

import (
	"strings"
	"testing"
)

func TestExplainKeyedAndUnkeyed(t *testing.T) {
	cfg := "../../examples/pgrouter.yaml"
	code, out, errOut := runCLI(t, "explain", "--config", cfg, "select * from users where user_id = $1", "42")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"role:      replica", "reason:    shard key users.user_id", "shards:    s"} {
		if !strings.Contains(out, want) {
			t.Errorf("keyed explain lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "s0, s1") {
		t.Errorf("a keyed point query must name one shard:\n%s", out)
	}
	_, out, _ = runCLI(t, "explain", "-c", cfg, "update orders set amount = 1")
	if !strings.Contains(out, "s0, s1") || !strings.Contains(out, "primary") {
		t.Errorf("unkeyed update should need every shard on the primary:\n%s", out)
	}
	code, _, errOut = runCLI(t, "explain", "-c", cfg, "-d", "nosuchdb", "select 1")
	if code == 0 || !strings.Contains(errOut, "nosuchdb") {
		t.Errorf("unknown database: exit %d, %q", code, errOut)
	}
}

// The docker-compose deployment's config must stay valid (there is no
// Docker engine in CI to try it for real).
func TestDeployConfigIsValid(t *testing.T) {
	code, out, errOut := runCLI(t, "config", "check", "../../deploy/pgrouter.yaml")
	if code != 0 || !strings.Contains(out, "OK (2 shards") {
		t.Fatalf("deploy/pgrouter.yaml: exit %d\n%s%s", code, out, errOut)
	}
}

// TestExplainCrossShard: explain says what the proxy does with a statement
// that needs every shard (merge, refusal, how writes commit), not a vague
// "may refuse".
func TestExplainCrossShard(t *testing.T) {
	cfg := "../../examples/pgrouter.yaml"
	cases := []struct{ sql, want string }{
		{"select user_id, count(*) from orders group by user_id order by 2 desc limit 3", "cross-shard: pgrouter runs it on every shard and merges the rows"},
		{"select row_number() over () from orders", "cross-shard: refused with 0A000"},
		{"update orders set amount = 1", "cross-shard: runs on every shard"},
	}
	for _, c := range cases {
		code, out, errOut := runCLI(t, "explain", "-c", cfg, c.sql)
		if code != 0 || !strings.Contains(out, c.want) || strings.Contains(out, "may refuse") {
			t.Errorf("explain %q: exit %d, want %q and no \"may refuse\":\n%s%s", c.sql, code, c.want, out, errOut)
		}
	}
}

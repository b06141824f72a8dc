package config

import (
	"strings"
	"testing"
)

func TestExpandString(t *testing.T) {
	env := map[string]string{"HOST": "db1", "EMPTY": "", "PORT": "5433"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	cases := []struct{ in, want, err string }{
		{"plain", "plain", ""},
		{"${HOST}:${PORT}", "db1:5433", ""},
		{"${MISSING:-127.0.0.1}:5432", "127.0.0.1:5432", ""},
		{"${EMPTY:-fallback}", "fallback", ""},
		{"${EMPTY}", "", ""},
		{"${MISSING:-}", "", ""},
		{"pa$$${HOST}", "pa$${HOST}", ""}, // "$${" is a literal "${"
		{"SCRAM-SHA-256$4096:abc$def:ghi", "SCRAM-SHA-256$4096:abc$def:ghi", ""},
		{"${MISSING}", "", "environment variable MISSING is not set"},
		{"${1BAD}", "", "invalid variable reference"},
		{"abc${HOST", "", "unterminated ${"},
	}
	for _, c := range cases {
		got, err := expandString(c.in, lookup)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("expand(%q): err = %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("expand(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

func TestEnvExpansionInFile(t *testing.T) {
	t.Setenv("PGR_TEST_PW", "from-env")
	t.Setenv("PGR_TEST_SIZE", "7")
	t.Setenv("PGR_TEST_EMPTY", "")
	yml := `pool:
  size: ${PGR_TEST_SIZE}
  min_idle: ${PGR_TEST_UNSET_IDLE:-1}
users:
  - name: app
    password: ${PGR_TEST_PW}
    server_user: ${PGR_TEST_EMPTY:-backend}
shards:
  - name: s0
    primary: ${PGR_TEST_UNSET_HOST:-127.0.0.1}:5432
databases:
  - name: app
`
	cfg := mustParse(t, yml)
	u := cfg.Users[0]
	if u.Password != "from-env" || u.BackendUser() != "backend" || cfg.Pool.Size != 7 || cfg.Pool.MinIdle != 1 ||
		cfg.Shards[0].Primary.Addr != "127.0.0.1:5432" {
		t.Errorf("expansion wrong: user=%+v pool=%+v primary=%+v", u, cfg.Pool, cfg.Shards[0].Primary)
	}
}

func TestEnvUnsetIsLocatedError(t *testing.T) {
	yml := replace(minimal, "password: pw", "password: ${PGR_TEST_SURELY_UNSET}")
	_, err := Parse([]byte(yml), "p.yaml")
	e := findError(t, err, "users[0].password", "environment variable PGR_TEST_SURELY_UNSET is not set")
	if e != nil && e.Line != 3 {
		t.Errorf("line = %d, want 3", e.Line)
	}
	// The missing password must not also be reported as "needs a password".
	if strings.Count(err.Error(), "\n") != 0 {
		t.Errorf("want exactly one error, got:\n%v", err)
	}
}

// TestPasswordsNeverInErrors: a broken file that holds passwords (plain, from
// the environment, or malformed) must not echo them.
func TestPasswordsNeverInErrors(t *testing.T) {
	t.Setenv("PGR_TEST_SECRET", "env-secret-42")
	yml := `listen: nowhere
users:
  - name: a
    password: plain-secret-17
    auth: md5x
  - name: b
    password: ${PGR_TEST_SECRET}
    pool_size: -3
  - name: c
    password: "broken${secret-99"
  - name: d
    password: "x${bad name secret-55}"
  - name: e
    password: 'SCRAM-SHA-256$4096:c2FsdA==$c3Q=:c2s='
    auth: md5
shards: []
databases: []
`
	_, err := Parse([]byte(yml), "p.yaml")
	if err == nil {
		t.Fatal("want errors")
	}
	out := err.Error()
	for _, secret := range []string{"plain-secret-17", "env-secret-42", "secret-99", "secret-55", "c2FsdA"} {
		if strings.Contains(out, secret) {
			t.Errorf("error output contains %q:\n%s", secret, out)
		}
	}
	if n := strings.Count(out, "\n") + 1; n < 7 {
		t.Errorf("want ≥ 7 errors, got %d:\n%s", n, out)
	}
}

package main

import (
	"strings"
	"testing"
)

const goodConfig = `users:
  - name: app
    password: pw
shards:
  - name: s0
    primary: 127.0.0.1:5432
  - name: s1
    primary: 127.0.0.1:5433
databases:
  - name: app
`

func TestConfigCheck(t *testing.T) {
	cases := []struct {
		name     string
		content  string
		code     int
		stdout   string // substring expected on stdout ("" = stdout must be empty)
		stderr   []string
		fileLine string // expected "file:line" prefix on stderr, line part only
	}{
		{
			name:    "good file",
			content: goodConfig,
			stdout:  "OK (2 shards, 1 database, 1 user)",
		},
		{
			name: "hash slots with a spare",
			content: strings.NewReplacer("    primary: 127.0.0.1:5432\n", "    primary: 127.0.0.1:5432\n    hash: [{modulus: 1, remainder: 0}]\n",
				"    primary: 127.0.0.1:5433\n", "    primary: 127.0.0.1:5433\n    hash: []\n").Replace(goodConfig),
			stdout: "OK (2 shards (1 spare), 1 database, 1 user)",
		},
		{
			name: "hash slots leaving keys out",
			content: strings.NewReplacer("    primary: 127.0.0.1:5432\n", "    primary: 127.0.0.1:5432\n    hash: [{modulus: 4, remainder: 0}]\n",
				"    primary: 127.0.0.1:5433\n", "    primary: 127.0.0.1:5433\n    hash: [{modulus: 2, remainder: 1}]\n").Replace(goodConfig),
			code:     1,
			fileLine: ":4: ",
			stderr:   []string{"shards: hash slots leave keys without a shard: remainders 2 of modulus 4 belong to no shard"},
		},
		{
			name:     "unknown key",
			content:  strings.Replace(goodConfig, "    password: pw", "    password: pw\n    passwrd: pw", 1),
			code:     1,
			fileLine: ":4: ",
			stderr:   []string{"users[0].passwrd: unknown key"},
		},
		{
			name:     "duplicate shard name",
			content:  strings.Replace(goodConfig, "name: s1", "name: s0", 1),
			code:     1,
			fileLine: ":7: ",
			stderr:   []string{`shards[1].name: duplicate shard name "s0" (first at line 5)`},
		},
		{
			name: "range without ranges",
			content: goodConfig + `    sharded_tables:
      - table: events
        column: day
        type: int
        function: range
`,
			code:     1,
			fileLine: ":15: ",
			stderr:   []string{"databases[0].sharded_tables[0].function: function range needs a ranges list"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, "pgrouter.yaml", tc.content)
			code, out, errOut := runCLI(t, "config", "check", path)
			if code != tc.code {
				t.Errorf("exit code %d, want %d (stderr %q)", code, tc.code, errOut)
			}
			if tc.stdout != "" && out != path+": "+tc.stdout+"\n" {
				t.Errorf("stdout %q, want %q", out, path+": "+tc.stdout)
			}
			if tc.stdout == "" && out != "" {
				t.Errorf("stdout should be empty on failure, got %q", out)
			}
			if tc.fileLine != "" && !strings.HasPrefix(errOut, path+tc.fileLine) {
				t.Errorf("stderr %q does not start with %q", errOut, path+tc.fileLine)
			}
			for _, s := range tc.stderr {
				if !strings.Contains(errOut, s) {
					t.Errorf("stderr %q lacks %q", errOut, s)
				}
			}
		})
	}
}

func TestConfigCheckSeveralFiles(t *testing.T) {
	good := writeFile(t, "good.yaml", goodConfig)
	bad := writeFile(t, "bad.yaml", "lisen: x\n"+goodConfig)
	code, out, errOut := runCLI(t, "config", "check", good, bad, "../../examples/minimal.yaml")
	if code != 1 {
		t.Errorf("exit %d, want 1 when any file fails", code)
	}
	if !strings.Contains(out, good+": OK") || !strings.Contains(out, "minimal.yaml: OK (1 shard, 1 database, 1 user)") {
		t.Errorf("stdout %q", out)
	}
	if !strings.HasPrefix(errOut, bad+":1: lisen: unknown key") {
		t.Errorf("stderr %q", errOut)
	}
}

func TestConfigCheckNeedsAFile(t *testing.T) {
	code, _, errOut := runCLI(t, "config", "check")
	if code != 1 || !strings.Contains(errOut, "requires at least 1 arg") {
		t.Errorf("exit %d stderr %q", code, errOut)
	}
	code, _, errOut = runCLI(t, "config", "check", "/nonexistent/pgrouter.yaml")
	if code != 1 || !strings.Contains(errOut, "/nonexistent/pgrouter.yaml: cannot open: no such file") {
		t.Errorf("exit %d stderr %q", code, errOut)
	}
}

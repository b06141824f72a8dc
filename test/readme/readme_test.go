// Package readme tests README.md: it starts `pgrouter demo` as a user would
// and runs the README's commands (```sh and ```console blocks, with the
// demo's real addresses and paths put in) and its example statements
// (```sql) against it, checks the config examples with `pgrouter config
// check`, and runs what the demo's own screen suggests. A command the test
// does not know how to run fails it: extend runCommand, so that README and
// code cannot drift apart unnoticed.
package readme

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func readme(t *testing.T) []block {
	t.Helper()
	md, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	return codeBlocks(string(md))
}

func requirePsql(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("psql"); err != nil {
		t.Fatal("psql not found: run `make deps` as root (Debian package postgresql-client-15)")
	}
}

func TestReadmeAgainstDemo(t *testing.T) {
	requirePsql(t)
	bin := pgrouterBinary(t)
	d := startDemo(t, bin)
	r := &runner{bin: bin, demo: d, configDir: t.TempDir()}
	var ran int
	for _, b := range readme(t) {
		switch b.lang {
		case "sh":
			cmds, err := shellLines(b.text)
			if err != nil {
				t.Fatalf("README.md:%d: %v", b.line, err)
			}
			for _, c := range cmds {
				r.runCommand(t, b.line, c)
				ran++
			}
		case "console":
			ran += r.runConsole(t, b)
		case "sql":
			r.runSQL(t, b)
			ran++
		case "":
			if strings.Contains(b.text, "dsn:") {
				checkScreenExample(t, b, d)
			}
		}
	}
	for _, c := range d.try {
		r.runCommand(t, 0, c)
		ran++
	}
	if ran < 8 {
		t.Errorf("ran only %d README and demo commands; did the README lose its examples?", ran)
	}
	t.Logf("ran %d commands from README.md and the demo screen", ran)
}

// checkScreenExample: every "key:" of README's sample of the demo screen is
// on the real screen.
func checkScreenExample(t *testing.T, b block, d *demo) {
	for _, l := range strings.Split(b.text, "\n") {
		k, _, ok := strings.Cut(strings.TrimSpace(l), ":")
		if ok && d.fields[k] == "" {
			t.Errorf("README.md:%d shows %q on the demo screen; the demo prints no such line:\n%s", b.line, k, d.screen)
		}
	}
}

// TestReadmeConfigExamples: the minimal config README shows is
// examples/minimal.yaml, and with README's sharded-table fragment added it
// passes `pgrouter config check` (done through README's own command in
// TestReadmeAgainstDemo; here the examples alone, without a demo).
func TestReadmeConfigExamples(t *testing.T) {
	blocks := readme(t)
	cfg := readmeConfig(t, blocks)
	minimal, err := os.ReadFile(filepath.Join(repoRoot, "examples/minimal.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := withoutComments(string(minimal)), withoutComments(firstYAML(t, blocks)); got != want {
		t.Errorf("README's minimal config differs from examples/minimal.yaml:\nREADME:\n%s\nexamples/minimal.yaml:\n%s", want, got)
	}
	bin := pgrouterBinary(t)
	path := filepath.Join(t.TempDir(), "pgrouter.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := run(t, "", bin, "config", "check", path)
	if err != nil || !strings.Contains(out, "OK") {
		t.Errorf("pgrouter config check on README's config: %v\n%s%s\nconfig:\n%s", err, out, errOut, cfg)
	}
}

// readmeConfig is README's first yaml block (a whole config) with the
// indented fragments of the later ones appended under its last database.
func readmeConfig(t *testing.T, blocks []block) string {
	t.Helper()
	cfg := firstYAML(t, blocks)
	for _, b := range blocks {
		if b.lang == "yaml" && strings.HasPrefix(b.text, " ") {
			cfg += "\n" + b.text
		}
	}
	return cfg + "\n"
}

func firstYAML(t *testing.T, blocks []block) string {
	t.Helper()
	for _, b := range blocks {
		if b.lang == "yaml" && strings.HasPrefix(b.text, "listen:") {
			return b.text
		}
	}
	t.Fatal("README.md has no ```yaml block starting with listen: (the minimal config)")
	return ""
}

var commentLine = regexp.MustCompile(`(?m)^\s*#.*\n`)

func withoutComments(s string) string {
	return strings.TrimSpace(commentLine.ReplaceAllString(s+"\n", ""))
}

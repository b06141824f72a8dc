package readme

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// runner runs README commands against one demo.
type runner struct {
	bin       string
	demo      *demo
	configDir string // where README's config example is written for `config check`
}

// The README's placeholders and the demo's real values.
var (
	readmeAddr    = "127.0.0.1:6432"
	readmeMetrics = "127.0.0.1:9930"
	readmeDemoDir = regexp.MustCompile(`/tmp/localpg-…`)
)

// subst puts the demo's address, metrics address and directory into a
// README command, and the built binary in place of pgrouter.
func (r *runner) subst(words []string) []string {
	out := make([]string, len(words))
	for i, w := range words {
		w = strings.ReplaceAll(w, readmeAddr, r.demo.addr())
		w = strings.ReplaceAll(w, readmeMetrics, strings.TrimSuffix(strings.TrimPrefix(r.demo.fields["metrics"], "http://"), "/metrics"))
		out[i] = readmeDemoDir.ReplaceAllLiteralString(w, r.demo.dir())
	}
	if isPgrouter(out[0]) {
		out[0] = r.bin
	}
	return out
}

func isPgrouter(arg0 string) bool {
	return arg0 == "pgrouter" || strings.HasSuffix(arg0, "/pgrouter") || arg0 == "go run ./cmd/pgrouter"
}

// runCommand runs one command line of README (line > 0) or of the demo
// screen (line 0), and checks what it says.
func (r *runner) runCommand(t *testing.T, line int, words []string) {
	t.Helper()
	where := "demo screen: "
	if line > 0 {
		where = "README.md:" + strconv.Itoa(line) + ": "
	}
	switch {
	case words[0] == "make":
		r.checkMakeTargets(t, where, words[1:])
	case words[0] == "psql":
		out, errOut, err := run(t, "", r.subst(words)...)
		if err != nil || strings.Contains(errOut, "ERROR") || strings.TrimSpace(out) == "" {
			t.Errorf("%s%s: %v\n%s%s", where, strings.Join(words, " "), err, out, errOut)
		}
	case isPgrouter(words[0]) && len(words) > 1:
		r.runPgrouter(t, where, words)
	default:
		t.Errorf("%s%q: test/readme does not know how to run this command; teach runner.runCommand", where, strings.Join(words, " "))
	}
}

func (r *runner) runPgrouter(t *testing.T, where string, words []string) {
	t.Helper()
	argv := r.subst(words)
	switch words[1] {
	case "explain":
		out, errOut, err := run(t, "", argv...)
		if err != nil || !strings.Contains(out, "shard") {
			t.Errorf("%s%s: %v\n%s%s", where, strings.Join(argv, " "), err, out, errOut)
		}
	case "config":
		if len(words) > 2 && words[2] == "push" { // the fleet demo's: publish its own config again
			out, errOut, err := run(t, "", argv...)
			if err != nil || !strings.Contains(out, "every live member runs version") {
				t.Errorf("%s%s: %v\n%s%s", where, strings.Join(argv, " "), err, out, errOut)
			}
			return
		}
		// README's config example (minimal + fragments) under the name the command uses.
		cfg := readmeConfig(t, readme(t))
		if err := os.WriteFile(filepath.Join(r.configDir, words[len(words)-1]), []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		out, errOut, err := run(t, r.configDir, argv...)
		if err != nil || !strings.Contains(out, "OK") {
			t.Errorf("%s%s: %v\n%s%s\nconfig:\n%s", where, strings.Join(words, " "), err, out, errOut, cfg)
		}
	case "serve":
		r.serve(t, where, argv)
	default:
		t.Errorf("%s%q: test/readme does not know pgrouter %s; teach runner.runPgrouter", where, strings.Join(words, " "), words[1])
	}
}

// checkMakeTargets: README's make targets exist (they are not run here:
// this test is part of make test).
func (r *runner) checkMakeTargets(t *testing.T, where string, targets []string) {
	mk, err := os.ReadFile(filepath.Join(repoRoot, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tg := range targets {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(tg) + `:`).Match(mk) {
			t.Errorf("%smake %s: the Makefile has no such target", where, tg)
		}
	}
}

// runConsole runs each "$ command" of a ```console block and, when output
// lines follow it, compares them with what the command printed.
func (r *runner) runConsole(t *testing.T, b block) int {
	t.Helper()
	var cmds int
	lines := strings.Split(b.text, "\n")
	for i := 0; i < len(lines); i++ {
		if !strings.HasPrefix(lines[i], "$ ") {
			continue
		}
		j := i + 1
		for j < len(lines) && !strings.HasPrefix(lines[j], "$ ") {
			j++
		}
		words, err := shellWords(strings.TrimPrefix(lines[i], "$ "))
		if err != nil {
			t.Fatalf("README.md:%d: %v", b.line+1+i, err)
		}
		want := trimLines(strings.Join(lines[i+1:j], "\n"))
		out, errOut, err := run(t, "", r.subst(words)...)
		if err != nil {
			t.Errorf("README.md:%d: %s: %v\n%s", b.line+1+i, lines[i], err, errOut)
		} else if want != "" && trimLines(out) != want {
			t.Errorf("README.md:%d: %s\nprints:\n%s\nREADME says:\n%s", b.line+1+i, lines[i], out, want)
		}
		cmds++
		i = j - 1
	}
	return cmds
}

func trimLines(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " \t")
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
}

// runSQL runs a ```sql block through psql against the demo's DSN, stopping
// at the first error.
func (r *runner) runSQL(t *testing.T, b block) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "readme.sql")
	if err := os.WriteFile(path, []byte(b.text+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := run(t, "", "psql", "-X", "-v", "ON_ERROR_STOP=1", "-f", path, r.demo.fields["dsn"])
	if err != nil || strings.Contains(errOut, "ERROR") {
		t.Errorf("README.md:%d: the example statements fail against the demo: %v\n%s\n%s", b.line, err, errOut, out)
	}
}

// serve runs README's `pgrouter serve` on a copy of the demo's config (free
// ports), queries through it, and checks what README says of it: SIGHUP
// reloads, SIGTERM drains and exits.
func (r *runner) serve(t *testing.T, where string, argv []string) {
	t.Helper()
	dir := t.TempDir()
	cfg, err := os.ReadFile(r.demo.fields["config"])
	if err != nil {
		t.Fatal(err)
	}
	name := argv[len(argv)-1]
	for i, a := range argv {
		if a == "--config" || a == "-c" {
			name = argv[i+1]
		}
	}
	if err := os.WriteFile(filepath.Join(dir, name), cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	logs, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	events := logEvents(logs)
	addr := waitLog(t, where, events, "pgrouter listening")["addr"]
	out, errOut, err := run(t, "", "psql", "-X", "-At", "postgres://app:app@"+addr+"/app?sslmode=disable", "-c", "select count(*) from users")
	if err != nil || strings.TrimSpace(out) != "2000" {
		t.Errorf("%spsql through pgrouter serve: %v %q %s", where, err, out, errOut)
	}
	_ = cmd.Process.Signal(syscall.SIGHUP)
	waitLog(t, where, events, "config reloaded")
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("%spgrouter serve after SIGTERM: %v", where, err)
		}
	case <-time.After(45 * time.Second):
		t.Errorf("%spgrouter serve still running 45s after SIGTERM", where)
	}
}

// logEvents decodes the JSON log lines of a process as they come.
func logEvents(r interface{ Read([]byte) (int, error) }) <-chan map[string]string {
	ch := make(chan map[string]string, 100)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			var raw map[string]any
			if json.Unmarshal(sc.Bytes(), &raw) != nil {
				ch <- map[string]string{"msg": sc.Text()}
				continue
			}
			ev := map[string]string{}
			for k, v := range raw {
				if s, ok := v.(string); ok {
					ev[k] = s
				}
			}
			ch <- ev
		}
	}()
	return ch
}

func waitLog(t *testing.T, where string, events <-chan map[string]string, msg string) map[string]string {
	t.Helper()
	timeout := time.After(time.Minute)
	var seen []string
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("%spgrouter serve exited before logging %q; it logged:\n%s", where, msg, strings.Join(seen, "\n"))
			}
			if ev["msg"] == msg {
				return ev
			}
			seen = append(seen, ev["msg"])
		case <-timeout:
			t.Fatalf("%spgrouter serve did not log %q within a minute; it logged:\n%s", where, msg, strings.Join(seen, "\n"))
		}
	}
}

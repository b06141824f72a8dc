package readme

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// repoRoot is where README.md and the Makefile are.
const repoRoot = "../.."

var build struct {
	once sync.Once
	bin  string
	err  error
}

// pgrouterBinary builds cmd/pgrouter once per test binary, as the user's
// `make build` does (with -race when the test runs with it, so both builds
// share the cache). A cold build compiles the cgo parser: minutes.
func pgrouterBinary(t *testing.T) string {
	t.Helper()
	build.once.Do(func() {
		dir, err := os.MkdirTemp("", "readme-bin-")
		if err != nil {
			build.err = err
			return
		}
		build.bin = filepath.Join(dir, "pgrouter")
		args := []string{"build", "-o", build.bin}
		if raceEnabled {
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, "./cmd/pgrouter")...)
		cmd.Dir = repoRoot
		began := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			build.err = errors.New("go build ./cmd/pgrouter: " + err.Error() + "\n" + string(out))
		}
		t.Logf("built %s in %s", build.bin, time.Since(began).Round(time.Millisecond))
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.bin
}

// demo is a running `pgrouter demo` and what its screen said.
type demo struct {
	cmd    *exec.Cmd
	stderr stderrFile
	fields map[string]string // "dsn" → value, … (the "key: value" lines)
	try    [][]string        // the commands under "try:", split into words
	screen string
}

// startDemo runs `pgrouter demo` on free ports and waits for its screen.
// Cleanup stops it with Ctrl-C (SIGINT), as a user would, and checks that
// it exits cleanly and removes its directory.
func startDemo(t *testing.T, bin string, extra ...string) *demo {
	t.Helper()
	d := &demo{stderr: newStderrFile(t), fields: map[string]string{}}
	d.cmd = exec.Command(bin, append([]string{"demo", "--listen", "127.0.0.1:0", "--metrics", "127.0.0.1:0"}, extra...)...)
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its own group, as a terminal's foreground job
	d.cmd.Stderr = d.stderr.File
	out, err := d.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.stop(t) })
	screen := make(chan string, 1)
	go func() {
		var b strings.Builder
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			b.WriteString(sc.Text() + "\n")
			if sc.Text() == "press Ctrl-C to stop" {
				screen <- b.String()
				drain(sc)
				return
			}
		}
		screen <- b.String()
	}()
	select {
	case d.screen = <-screen:
	case <-time.After(3 * time.Minute):
		t.Fatalf("pgrouter demo printed no screen within 3 minutes; stderr:\n%s", d.stderr)
	}
	if !strings.Contains(d.screen, "press Ctrl-C to stop") {
		t.Fatalf("pgrouter demo exited before it was ready; stdout:\n%s\nstderr:\n%s", d.screen, d.stderr)
	}
	t.Logf("demo ready in %s (as measured here, build excluded):\n%s", time.Since(began).Round(time.Millisecond), d.screen)
	d.parse(t)
	return d
}

func drain(sc *bufio.Scanner) {
	for sc.Scan() {
	}
}

// parse reads "key: value" lines and the commands under "try:".
func (d *demo) parse(t *testing.T) {
	inTry := false
	for _, l := range strings.Split(d.screen, "\n") {
		switch {
		case l == "try:":
			inTry = true
		case inTry && strings.HasPrefix(l, "  "):
			words, err := shellWords(l)
			if err != nil {
				t.Fatalf("demo screen: %v", err)
			}
			d.try = append(d.try, words)
		case inTry:
			inTry = false
		case strings.HasPrefix(l, "  ") && strings.Contains(l, ":"):
			k, v, _ := strings.Cut(strings.TrimSpace(l), ":")
			d.fields[k] = strings.TrimSpace(v)
		}
	}
	for _, k := range []string{"dsn", "admin", "metrics", "config", "logs"} {
		if d.fields[k] == "" {
			t.Fatalf("demo screen has no %q line:\n%s", k, d.screen)
		}
	}
	if len(d.try) == 0 {
		t.Fatalf("demo screen suggests no commands:\n%s", d.screen)
	}
}

// addr is the proxy's host:port from the DSN the demo printed.
func (d *demo) addr() string {
	rest := d.fields["dsn"][strings.Index(d.fields["dsn"], "@")+1:]
	return rest[:strings.Index(rest, "/")]
}

// dir is the demo's cluster directory (its config file's directory).
func (d *demo) dir() string { return filepath.Dir(d.fields["config"]) }

func (d *demo) stop(t *testing.T) {
	if d.cmd.ProcessState != nil {
		return
	}
	_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGINT) // Ctrl-C: to the whole group, children too
	done := make(chan error, 1)
	go func() { done <- d.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("pgrouter demo after Ctrl-C: %v; stderr:\n%s", err, d.stderr)
		}
	case <-time.After(time.Minute):
		_ = d.cmd.Process.Kill()
		<-done
		t.Errorf("pgrouter demo still running a minute after Ctrl-C; killed. stderr:\n%s", d.stderr)
	}
	if dir := d.fields["config"]; dir != "" {
		if _, err := os.Stat(filepath.Dir(dir)); err == nil {
			t.Errorf("the demo left its directory %s behind", filepath.Dir(dir))
		}
	}
}

// stderrFile is where a process's stderr goes: a file, so the test can read
// it at any time while the process writes.
type stderrFile struct{ *os.File }

func newStderrFile(t *testing.T) stderrFile {
	f, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return stderrFile{f}
}

func (f stderrFile) String() string {
	b, _ := os.ReadFile(f.Name())
	return string(b)
}

// run executes argv with a deadline and returns its stdout and stderr.
func run(t *testing.T, dir string, argv ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	// No ~/.psqlrc: README shows what a plain psql prints.
	cmd.Env = append(os.Environ(), "PGCONNECT_TIMEOUT=10", "PSQLRC=/dev/null")
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// runCLI runs one command line in-process and captures what it prints.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestVersion(t *testing.T) {
	code, out, errOut := runCLI(t, "version")
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	if !strings.HasPrefix(out, "pgrouter dev (") || !strings.Contains(out, runtime.Version()) {
		t.Errorf("version output %q", out)
	}
	code, flagOut, _ := runCLI(t, "--version")
	if code != 0 || flagOut != out {
		t.Errorf("--version = %q (exit %d), want %q", flagOut, code, out)
	}
}

func TestLogFlagsValidated(t *testing.T) {
	cases := []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"--log-format", "text", "--log-level", "debug", "version"}, 0, ""},
		{[]string{"--log-format", "xml", "version"}, 1, `--log-format "xml": must be json or text`},
		{[]string{"version", "--log-level", "loud"}, 1, `--log-level "loud": must be debug, info, warn or error`},
	}
	for _, c := range cases {
		code, _, errOut := runCLI(t, c.args...)
		if code != c.code || !strings.Contains(errOut, c.err) {
			t.Errorf("%v: exit %d stderr %q; want exit %d and %q", c.args, code, errOut, c.code, c.err)
		}
	}
}

func TestUnknownCommandFails(t *testing.T) {
	code, _, errOut := runCLI(t, "frobnicate")
	if code != 1 || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Errorf("exit %d stderr %q", code, errOut)
	}
}

func TestRootRegistersCommands(t *testing.T) {
	root := newRootCmd()
	for _, name := range []string{"serve", "demo", "config", "version"} {
		if c, _, err := root.Find([]string{name}); err != nil || c.Name() != name {
			t.Errorf("command %q not registered: %v", name, err)
		}
	}
}

package twophase

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLogSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	a, b := l.NewGID(), l.NewGID()
	if a == b || !l.Owns(a) || !strings.HasPrefix(a, GIDPrefix+l.Instance()+"_") {
		t.Fatalf("gids %q %q not unique/owned", a, b)
	}
	for _, g := range []string{a, b} {
		if err := l.Commit(Decision{GID: g, Database: "app", User: "app", Shards: []string{"s0", "s2"}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Done(a); err != nil {
		t.Fatal(err)
	}
	l.Close()

	l2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if l2.Instance() != l.Instance() {
		t.Fatalf("instance id changed: %s → %s", l.Instance(), l2.Instance())
	}
	p := l2.Pending()
	if len(p) != 1 || p[0].GID != b || strings.Join(p[0].Shards, ",") != "s0,s2" || p[0].Database != "app" {
		t.Fatalf("pending after reopen = %+v, want only %s on s0,s2", p, b)
	}
	if _, ok := l2.Decided(a); ok {
		t.Fatalf("%s was done but is still pending", a)
	}
	if l2.NewGID() == b {
		t.Fatal("gid reused after restart")
	}
}

func TestTornLastLineIsIgnored(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	g := l.NewGID()
	l.Commit(Decision{GID: g, Database: "app", User: "app", Shards: []string{"s0", "s1"}})
	l.Close()
	f, _ := os.OpenFile(filepath.Join(dir, logName), os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString("commit pgrouter_x_1")
	f.Close()
	l2, err := Open(dir)
	if err != nil {
		t.Fatalf("torn tail refused: %v", err)
	}
	if p := l2.Pending(); len(p) != 1 || p[0].GID != g {
		t.Fatalf("pending = %+v, want %s only", p, g)
	}
}

func TestCorruptMiddleLineIsAnError(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, logName), []byte("garbage here\ndone x\n"), 0o600)
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "2pc.log:1") {
		t.Fatalf("corrupt log accepted or unlocated: %v", err)
	}
}

func TestCompactKeepsOnlyPending(t *testing.T) {
	defer func(n int) { compactAfter = n }(compactAfter)
	compactAfter = 10
	dir := t.TempDir()
	l, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	var open string
	for i := 0; i < 8; i++ {
		g := l.NewGID()
		if err := l.Commit(Decision{GID: g, Database: "app", User: "app", Shards: []string{"s0", "s1"}}); err != nil {
			t.Fatal(err)
		}
		if i == 5 {
			open = g
			continue
		}
		l.Done(g)
	}
	if err := l.Compact(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, logName))
	if lines := strings.Count(string(b), "\n"); lines != 1 || !strings.Contains(string(b), open) {
		t.Fatalf("after Compact the log holds %d line(s):\n%s\nwant only %s", lines, b, open)
	}
	// Appends go to the new file.
	g := l.NewGID()
	l.Commit(Decision{GID: g, Database: "app", User: "app", Shards: []string{"s0"}})
	l.Close()
	l2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if p := l2.Pending(); len(p) != 2 {
		t.Fatalf("pending after compact and reopen = %+v, want %s and %s", p, open, g)
	}
}

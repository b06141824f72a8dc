package ops

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgrouter/pgrouter/proxy"
)

// writeFileAtomic replaces path by rename, as editors and config tools do,
// so the watcher never sees a half-written file.
func writeFileAtomic(t *testing.T, path, text string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func nodeCount(inst *proxy.Instance) int { return len(inst.Topology.Snapshot().Nodes()) }

// The config watcher on a second pgrouter with its own copy of the config:
// a valid edit (pool size, plus replica2) is applied; a touch that does not
// change the content reloads nothing; a broken file keeps the running config
// and logs the error with file:line; fixing the file applies it again.
func TestWatchConfigReloadsOnChange(t *testing.T) {
	orig, err := os.ReadFile(env.Path)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "pgrouter.yaml")
	writeFileAtomic(t, path, string(orig))
	inst, sink := startLoggedProxy(t, path, nil)
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { inst.WatchConfig(ctx, path, 100*time.Millisecond); close(stopped) }()
	t.Cleanup(func() { cancel(); <-stopped })
	waitEntry(t, sink, "config watch started", map[string]any{"file": path})

	if got := inst.Server.Config().Pool.Size; got != 10 {
		t.Fatalf("pool.size at start = %d, want 10 (from the shared env)", got)
	}
	nodesBefore := nodeCount(inst)

	// A valid change: pool size 10 → 7 and replica2 added.
	valid := withReplica2(strings.Replace(string(orig), "size: 10", "size: 7", 1))
	if valid == string(orig) || !strings.Contains(valid, "size: 7") {
		t.Fatalf("could not edit the config:\n%s", orig)
	}
	writeFileAtomic(t, path, valid)
	eventually(t, 15*time.Second, "watched change applied", func() error {
		if got := inst.Server.Config().Pool.Size; got != 7 {
			return fmt.Errorf("pool.size = %d", got)
		}
		if got := nodeCount(inst); got != nodesBefore+1 {
			return fmt.Errorf("%d nodes, want %d", got, nodesBefore+1)
		}
		return nil
	})
	applied := waitEntry(t, sink, "config reloaded", map[string]any{"source": "watch", "file": path})
	if applied["level"] != "INFO" {
		t.Errorf("config reloaded at %v, want INFO", applied["level"])
	}
	out, err := exec.Command(psqlPath(t), "-X", "-A", "-t", "-F", "|", instDSN(inst, "admin", "admin", "pgrouter"), "-c", "SHOW CONFIG").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "pool.size|7") {
		t.Errorf("SHOW CONFIG after the watched reload: %v\n%s", err, out)
	}

	// Same content, new mtime: nothing to reload. (Several polls pass
	// before the next edit; if none did, this part proves less, not wrong.)
	now := time.Now()
	if err := os.Chtimes(path, now, now); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if n := len(find(sink.entries(t), "config reloaded")); n != 1 {
		t.Errorf("%d reloads after touching an unchanged file, want 1 (the edit)", n)
	}

	// A broken file: an unknown key on a known line. The running config stays.
	broken := strings.TrimRight(strings.Replace(valid, "size: 7", "size: 5", 1), "\n") + "\n"
	badLine := strings.Count(broken, "\n") + 1
	broken += "pool_size_typo: 7\n"
	writeFileAtomic(t, path, broken)
	refused := waitEntry(t, sink, "config reload refused", map[string]any{"source": "watch"})
	if refused["level"] != "WARN" {
		t.Errorf("config reload refused at %v, want WARN", refused["level"])
	}
	if msg, _ := refused["err"].(string); !strings.Contains(msg, fmt.Sprintf("%s:%d", path, badLine)) || !strings.Contains(msg, "pool_size_typo") {
		t.Errorf("refused reload does not name %s:%d and the key: %q", path, badLine, msg)
	}
	if got := inst.Server.Config().Pool.Size; got != 7 {
		t.Errorf("pool.size = %d after a broken file, want the running 7", got)
	}
	if got := nodeCount(inst); got != nodesBefore+1 {
		t.Errorf("%d nodes after a broken file, want %d", got, nodesBefore+1)
	}
	c := connect(t, instDSN(inst, "app", "app", "app"))
	if _, err := c.Exec(context.Background(), "select 1"); err != nil {
		t.Errorf("client after a refused watched reload: %v", err)
	}

	// Fixing the file is picked up: the watcher keeps going after a failure.
	writeFileAtomic(t, path, string(orig))
	eventually(t, 15*time.Second, "fixed file applied", func() error {
		if got := inst.Server.Config().Pool.Size; got != 10 {
			return fmt.Errorf("pool.size = %d", got)
		}
		if got := nodeCount(inst); got != nodesBefore {
			return fmt.Errorf("%d nodes, want %d", got, nodesBefore)
		}
		return nil
	})
	if n := len(find(sink.entries(t), "config reload refused")); n != 1 {
		t.Errorf("the broken file was reported %d times, want once", n)
	}
}

package ops

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// rewriteConfig replaces the config file's text; the original comes back
// (and is reloaded) when the test ends.
func rewriteConfig(t *testing.T, edit func(string) string) {
	t.Helper()
	orig, err := os.ReadFile(env.Path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.WriteFile(env.Path, orig, 0o600); err != nil {
			t.Error(err)
		}
		if err := env.Proxy.Reload(env.Path, false); err != nil {
			t.Errorf("restoring the config: %v", err)
		}
	})
	if err := os.WriteFile(env.Path, []byte(edit(string(orig))), 0o600); err != nil {
		t.Fatal(err)
	}
}

// withReplica2 adds replica2 after replica1's line, same indentation.
func withReplica2(cfg string) string {
	r1, r2 := env.Cluster.Shards[0].Replicas[0], env.Cluster.Shards[0].Replicas[1]
	var out []string
	for _, l := range strings.Split(cfg, "\n") {
		out = append(out, l)
		if strings.Contains(l, r1.Addr()) {
			indent := l[:len(l)-len(strings.TrimLeft(l, " "))]
			out = append(out, fmt.Sprintf("%s- {name: %s, addr: %q}", indent, r2.Name, r2.Addr()))
		}
	}
	return strings.Join(out, "\n")
}

// readLoad runs reads from n clients until stop, counting failures and
// the server ports that answered.
type readLoad struct {
	failures atomic.Int64
	reads    atomic.Int64
	mu       sync.Mutex
	ports    map[int]int
	firstErr error
}

func startReadLoad(t *testing.T, n int, stop <-chan struct{}) (*readLoad, *sync.WaitGroup) {
	l := &readLoad{ports: map[int]int{}}
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		c := connect(t, env.AppDSN())
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				var port int
				err := c.QueryRow(context.Background(), "select inet_server_port()").Scan(&port)
				l.reads.Add(1)
				l.mu.Lock()
				if err != nil {
					l.failures.Add(1)
					if l.firstErr == nil {
						l.firstErr = err
					}
				} else {
					l.ports[port]++
				}
				l.mu.Unlock()
			}
		}()
	}
	return l, &wg
}

func (l *readLoad) port(p int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ports[p]
}

// Adding a replica with RELOAD under a read load: no client query fails,
// and reads reach the new replica.
func TestReloadAddsReplicaUnderLoad(t *testing.T) {
	r2 := env.Cluster.Shards[0].Replicas[1]
	stop := make(chan struct{})
	load, wg := startReadLoad(t, 4, stop)
	stopped := false
	halt := func() {
		if !stopped {
			stopped = true
			close(stop)
			wg.Wait()
		}
	}
	defer halt()
	time.Sleep(500 * time.Millisecond)
	if load.port(r2.Port) != 0 {
		t.Fatal("reads reached replica2 before it was in the config")
	}
	rewriteConfig(t, withReplica2)
	mustAdmin(t, "RELOAD")
	if r := nodeRow(t, replica2()); r == nil || r[3] != "replica" {
		t.Fatalf("SHOW NODES after RELOAD: replica2 row %v", r)
	}
	deadline := time.Now().Add(30 * time.Second)
	for load.port(r2.Port) == 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // keep the load on both replicas a while
	halt()
	if load.port(r2.Port) == 0 {
		t.Errorf("no read reached the new replica within 30s (ports %v)", load.ports)
	}
	if n := load.failures.Load(); n != 0 {
		t.Errorf("%d of %d reads failed across the reload; first: %v", n, load.reads.Load(), load.firstErr)
	}
	t.Logf("%d reads, ports %v", load.reads.Load(), load.ports)
}

// A file with an unknown key is refused with its file:line; the running
// topology and clients are untouched.
func TestReloadBrokenFileKeepsTopology(t *testing.T) {
	c := connect(t, env.AppDSN())
	nodesBefore := adminRows(t, "SHOW NODES")
	var badLine int
	rewriteConfig(t, func(cfg string) string {
		cfg = strings.TrimRight(withReplica2(cfg), "\n") + "\n"
		badLine = strings.Count(cfg, "\n") + 1
		return cfg + "pool_size_typo: 7\n"
	})
	out, err := adminPsql(t, "RELOAD")
	if err == nil {
		t.Fatalf("RELOAD of a broken file succeeded: %s", out)
	}
	if want := fmt.Sprintf("%s:%d", env.Path, badLine); !strings.Contains(out, want) || !strings.Contains(out, "pool_size_typo") {
		t.Errorf("RELOAD error does not name %s and the key:\n%s", want, out)
	}
	if err := env.Proxy.Reload(env.Path, false); err == nil || !strings.Contains(err.Error(), fmt.Sprintf(":%d", badLine)) {
		t.Errorf("Reload API: %v", err)
	}
	if nodesAfter := adminRows(t, "SHOW NODES"); len(nodesAfter) != len(nodesBefore) || nodeRow(t, replica2()) != nil {
		t.Errorf("topology changed by a refused reload: %v → %v", nodesBefore, nodesAfter)
	}
	if _, err := c.Exec(context.Background(), "select 1"); err != nil {
		t.Errorf("client after a refused reload: %v", err)
	}
	if cfg := mustAdmin(t, "SHOW CONFIG"); !strings.Contains(cfg, "pool.size|10") {
		t.Errorf("SHOW CONFIG after a refused reload:\n%s", cfg)
	}
}

// A reload that would move rows (a renamed shard) is refused unless forced.
func TestReloadRefusesPlacementChange(t *testing.T) {
	rewriteConfig(t, func(cfg string) string {
		return strings.Replace(cfg, "name: shard0", "name: shard9", 1)
	})
	out, err := adminPsql(t, "RELOAD")
	if err == nil || !strings.Contains(out, "data placement") || !strings.Contains(out, "RELOAD FORCE") {
		t.Errorf("RELOAD renaming a shard: %v\n%s", err, out)
	}
	if rows := adminRows(t, "SHOW SHARDS"); len(rows) != 1 || rows[0][1] != "shard0" {
		t.Errorf("SHOW SHARDS after a refused reload: %v", rows)
	}
}

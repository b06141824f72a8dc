//go:build soak

package soak

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pgrouter/pgrouter/test/testenv"
	"github.com/pgrouter/pgrouter/topology/localpg"
)

// sections: a sharded table, limits raised for 10,000 clients of one user,
// warnings only in the log.
func sections() map[string]string {
	return map[string]string{
		"log":    "  level: warn",
		"pool":   "  size: 20\n  connect_timeout: 30s\n  acquire_timeout: 10s\n  idle_timeout: 5s",
		"limits": "  max_clients_per_user: 50000\n  max_clients_per_database: 50000",
		"db":     "    sharded_tables:\n      - {table: soak, column: id, type: int, function: hash}",
	}
}

// startCluster runs 2 shards × (primary + replica) with table soak.
func startCluster(t *testing.T) *localpg.Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := localpg.Start(ctx, localpg.Options{Shards: 2, Replicas: 1,
		Settings: map[string]string{"max_connections": "300"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	for _, s := range c.Shards {
		if err := s.Primary.Exec(ctx, "CREATE DATABASE app"); err != nil {
			t.Fatal(err)
		}
	}
	e := &testenv.Env{Cluster: c}
	if err := e.ExecOnPrimaries(ctx, "app", "CREATE TABLE soak (id bigint PRIMARY KEY, n bigint NOT NULL DEFAULT 0)"); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitReplicated(ctx); err != nil {
		t.Fatal(err)
	}
	return c
}

// router is pgrouter running as a child process.
type router struct {
	cmd           *exec.Cmd
	addr, metrics string
	log           string
	exited        chan struct{}
	client        *http.Client
}

// startRouter builds cmd/pgrouter and runs it on a config for c, with
// pprof on (the goroutine count comes from its goroutine profile).
func startRouter(t *testing.T, c *localpg.Cluster) *router {
	t.Helper()
	bin := testenv.BuildPgrouter(t)
	dir := t.TempDir()
	r := &router{addr: testenv.FreeAddr(t), metrics: testenv.FreeAddr(t), exited: make(chan struct{}),
		client: &http.Client{Timeout: 10 * time.Second}}
	yaml := c.ConfigYAML(localpg.ConfigOptions{Listen: r.addr, MetricsListen: r.metrics,
		Users: testenv.DefaultUsers(c.Password), Sections: sections()})
	yaml = strings.Replace(yaml, "  listen: "+r.metrics+"\n", "  listen: "+r.metrics+"\n  pprof: true\n", 1)
	yaml = strings.Replace(yaml, "listen: "+r.addr+"\n", "listen: "+r.addr+"\ndata_dir: "+dir+"\n", 1)
	path := filepath.Join(dir, "pgrouter.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	r.log = path + ".log"
	logf, err := os.Create(r.log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logf.Close() })
	r.cmd = exec.Command(bin, "serve", "--config", path)
	r.cmd.Stdout, r.cmd.Stderr = logf, logf
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.cmd.Wait(); close(r.exited) }()
	t.Cleanup(func() {
		r.cmd.Process.Kill()
		<-r.exited
	})
	r.waitListening(t)
	return r
}

func (r *router) waitListening(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if c, err := net.Dial("tcp", r.addr); err == nil {
			c.Close()
			return
		}
		r.checkAlive(t)
		if time.Now().After(deadline) {
			t.Fatalf("pgrouter did not listen on %s within 60s", r.addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkAlive fails the test with the log's tail if pgrouter exited.
func (r *router) checkAlive(t *testing.T) {
	t.Helper()
	select {
	case <-r.exited:
		out, _ := os.ReadFile(r.log)
		if len(out) > 3000 {
			out = out[len(out)-3000:]
		}
		t.Fatalf("pgrouter exited: %v\n%s", r.cmd.ProcessState, out)
	default:
	}
}

// sample is one reading of pgrouter's resources.
type sample struct {
	at               time.Duration
	phase            string
	goroutines, fds  int
	rssKiB, heapKiB  int64
	clients, queries int64
	errors           int64
}

var (
	goroutineTotal = regexp.MustCompile(`goroutine profile: total (\d+)`)
	heapAlloc      = regexp.MustCompile(`(?m)^# HeapAlloc = (\d+)$`)
)

// sample reads goroutines and the live heap (pprof; the heap profile runs
// a GC first, which also lets the runtime return freed memory), open fds and
// RSS of the process.
func (r *router) sample(t *testing.T) sample {
	t.Helper()
	r.checkAlive(t)
	var s sample
	n, _ := strconv.Atoi(r.pprof(t, "goroutine?debug=1", goroutineTotal))
	s.goroutines = n
	heap, _ := strconv.ParseInt(r.pprof(t, "heap?gc=1&debug=1", heapAlloc), 10, 64)
	s.heapKiB = heap >> 10
	pid := r.cmd.Process.Pid
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	s.fds = len(fds)
	s.rssKiB = rssKiB(t, pid)
	return s
}

// pprof fetches /debug/pprof/<path> and returns re's first group in it.
func (r *router) pprof(t *testing.T, path string, re *regexp.Regexp) string {
	t.Helper()
	resp, err := r.client.Get("http://" + r.metrics + "/debug/pprof/" + path)
	if err != nil {
		t.Fatalf("pprof %s: %v", path, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := re.FindSubmatch(body)
	if m == nil {
		t.Fatalf("pprof %s: no %v in %.300q", path, re, body)
	}
	return string(m[1])
}

// saveHeapProfile writes pgrouter's heap profile (after a GC) to path.
func (r *router) saveHeapProfile(t *testing.T, path string) {
	t.Helper()
	resp, err := r.client.Get("http://" + r.metrics + "/debug/pprof/heap?gc=1")
	if err != nil {
		t.Errorf("heap profile: %v", err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if err := os.WriteFile(path, body, 0o644); err != nil {
		t.Errorf("heap profile: %v", err)
		return
	}
	t.Logf("heap profile of pgrouter after the clients left: go tool pprof -top -inuse_space %s", path)
}

func rssKiB(t *testing.T, pid int) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

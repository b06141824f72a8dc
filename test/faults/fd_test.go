package faults

import (
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

	"github.com/jackc/pgx/v5"

	"github.com/pgrouter/pgrouter/test/testenv"
)

// Out of file descriptors, pgrouter keeps running: accept errors back off
// and are counted, and once the clients are gone it serves again.
func TestFileDescriptorExhaustion(t *testing.T) {
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		t.Fatal("prlimit is needed: apt-get install -y util-linux")
	}
	bin := testenv.BuildPgrouter(t)
	addr, maddr := testenv.FreeAddr(t), testenv.FreeAddr(t)
	dir := t.TempDir()
	src, err := os.ReadFile(env.Path)
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(string(src), "listen: 127.0.0.1:0\n", "listen: "+addr+"\ndata_dir: "+dir+"\n", 1)
	cfg = strings.Replace(cfg, "  listen: 127.0.0.1:0\n", "  listen: "+maddr+"\n", 1)
	path := filepath.Join(dir, "pgrouter.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(path + ".log")
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	// Soft and hard limit: Go raises the soft limit to the hard one at start.
	cmd := exec.Command(prlimit, "--nofile=256:256", bin, "serve", "--config", path)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var waitErr error
	exited := make(chan struct{}) // closed when the process has exited
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	waitListening(t, addr, exited, path)

	var conns []net.Conn
	for i := 0; i < 300; i++ {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			break // the backlog is full: enough
		}
		conns = append(conns, c)
	}
	time.Sleep(500 * time.Millisecond) // let the accept loop hit EMFILE
	select {
	case <-exited:
		out, _ := os.ReadFile(path + ".log")
		t.Fatalf("pgrouter exited with %d connections open: %v\n%s", len(conns), waitErr, tail(out))
	default:
	}
	for _, c := range conns {
		c.Close()
	}
	start := time.Now()
	dsn := fmt.Sprintf("postgres://app:app@%s/app?sslmode=disable&connect_timeout=5", addr)
	for {
		err := selectOne(dsn)
		if err == nil {
			break
		}
		if time.Since(start) > 30*time.Second {
			t.Fatalf("pgrouter does not serve again after the clients left: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("%d connections opened under a 256-descriptor limit; serving again %v after they closed",
		len(conns), time.Since(start).Round(time.Millisecond))
	if n := scrapeCounter(t, maddr, "pgrouter_accept_errors_total"); n < 1 {
		t.Errorf("pgrouter_accept_errors_total = %v, want > 0", n)
	} else {
		t.Logf("pgrouter_accept_errors_total = %v", n)
	}
	out, _ := os.ReadFile(path + ".log")
	if n := strings.Count(string(out), "accepting client connections failed"); n < 1 || n > 5 {
		t.Errorf("want one warning per burst of accept errors, got %d", n)
	}
}

func selectOne(dsn string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	var n int
	return c.QueryRow(ctx, "select 1").Scan(&n)
}

func scrapeCounter(t *testing.T, addr, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + name + ` (\S+)$`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("%s not in /metrics", name)
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

func waitListening(t *testing.T, addr string, exited chan struct{}, path string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-exited:
			out, _ := os.ReadFile(path + ".log")
			t.Fatalf("pgrouter exited at start:\n%s", out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("pgrouter did not start listening on %s", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func tail(b []byte) string {
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

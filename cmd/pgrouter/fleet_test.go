package main

import (
	"net"
	"strings"
	"testing"

	"github.com/pgrouter/pgrouter/fleet"
)

// TestConfigPush against a real etcd (Debian etcd-server): serve on a
// prefix nothing was pushed to says how to publish a config; a file with a
// mistake is refused with file:line and nothing is published; a good file
// becomes version 1, and with no member running yet push says so instead
// of claiming every member runs it; a missing --etcd is a clear error.
func TestConfigPush(t *testing.T) {
	etcd, err := fleet.StartLocalEtcd(t.TempDir(), "/push-test")
	if err != nil {
		t.Fatal(err)
	}
	defer etcd.Stop()
	if code, _, errOut := runCLI(t, "serve", "--config", etcd.URL); code == 0 || !strings.Contains(errOut, "holds no config yet") ||
		!strings.Contains(errOut, "pgrouter config push FILE --etcd "+etcd.URL) {
		t.Fatalf("serve on an empty prefix: exit %d, stderr %s", code, errOut)
	}
	good := "listen: 127.0.0.1:6432\nusers:\n  - {name: app, password: app}\nshards:\n  - {name: s0, primary: 127.0.0.1:5432}\ndatabases:\n  - name: app\n"
	bad := writeFile(t, "bad.yaml", good+"timeouts:\n  query: soon\n")
	code, out, errOut := runCLI(t, "config", "push", bad, "--etcd", etcd.URL)
	if code == 0 || !strings.Contains(errOut, bad+":9:") || !strings.Contains(errOut, "timeouts.query") || strings.Contains(out, "published") {
		t.Fatalf("push of a bad file: exit %d\nstdout %s\nstderr %s\nwant %s:9: naming timeouts.query, nothing published", code, out, errOut, bad)
	}
	path := writeFile(t, "pgrouter.yaml", good)
	code, out, errOut = runCLI(t, "config", "push", path, "--etcd", etcd.URL)
	if code != 0 || !strings.Contains(out, "published as version 1") || !strings.Contains(out, "no member is running yet") {
		t.Fatalf("push of a good file with no member: exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}
	if code, _, errOut := runCLI(t, "config", "push", path); code == 0 || !strings.Contains(errOut, "--etcd") {
		t.Fatalf("push without --etcd: exit %d, stderr %s", code, errOut)
	}
}

// TestServeEtcdUnreachable: serve on an etcd that does not answer fails
// within the request deadline, saying so, instead of hanging.
func TestServeEtcdUnreachable(t *testing.T) {
	addr := freeAddr(t)
	code, _, errOut := runCLI(t, "serve", "--config", "etcd://"+addr+"/x")
	if code == 0 || !strings.Contains(errOut, "etcd is unreachable (etcd://"+addr+"/x)") {
		t.Fatalf("serve on a silent etcd: exit %d, stderr %s", code, errOut)
	}
}

// freeAddr is a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

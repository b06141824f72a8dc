package testenv

import (
	"context"
	"log/slog"
	"net"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/pgrouter/pgrouter/config"
	"github.com/pgrouter/pgrouter/proxy"
)

// BuildPgrouter compiles cmd/pgrouter into the test's temporary directory,
// for tests that run pgrouter as a process (crash, resource limits). The
// calling package must sit two levels below the repository (test/<pkg>).
func BuildPgrouter(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "pgrouter")
	out, err := exec.Command("go", "build", "-o", bin, "../../cmd/pgrouter").CombinedOutput()
	if err != nil {
		t.Fatalf("build pgrouter: %v\n%s", err, out)
	}
	return bin
}

// FreeAddr returns a loopback address with a port free right now.
func FreeAddr(t testing.TB) string {
	t.Helper()
	addr, err := freeAddrErr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

func freeAddrErr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// StartInstance runs one more pgrouter in this process on cfg, closed when
// the test ends.
func StartInstance(t testing.TB, cfg *config.Config, log *slog.Logger) *proxy.Instance {
	t.Helper()
	inst, err := proxy.Start(context.Background(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		inst.Close(ctx)
	})
	return inst
}

package ops

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os/exec"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgrouter/pgrouter/config"
	"github.com/pgrouter/pgrouter/proxy"
)

// SHUTDOWN on a second pgrouter over the same cluster: psql gets its
// answer, the running transaction may still commit, then the listener
// stops and new clients are refused.
func TestAdminShutdown(t *testing.T) {
	ctx := context.Background()
	cfg, err := config.Load(env.Path)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listen, cfg.Metrics.Listen = "127.0.0.1:0", "off"
	inst, err := proxy.Start(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		inst.Close(cctx)
	})
	dsn := func(user, pw, db string) string {
		return "postgres://" + user + ":" + pw + "@" + inst.Addr + "/" + db + "?sslmode=disable"
	}
	c, err := pgx.Connect(ctx, dsn("app", "app", "app"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "select 1"); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(psqlPath(t), "-X", "-A", "-t", dsn("admin", "admin", "pgrouter"), "-c", "SHUTDOWN").CombinedOutput()
	if err != nil {
		t.Fatalf("SHUTDOWN: %v\n%s", err, out)
	}
	eventually(t, 10*time.Second, "listener closed after SHUTDOWN", func() error {
		conn, err := net.DialTimeout("tcp", inst.Addr, time.Second)
		if err == nil {
			conn.Close()
			return errors.New("still accepting connections")
		}
		return nil
	})
	if _, err := tx.Exec(ctx, "select 2"); err != nil {
		t.Errorf("running transaction cut by SHUTDOWN: %v", err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Errorf("COMMIT during graceful shutdown: %v", err)
	}
	select {
	case err := <-inst.Done():
		if err != nil {
			t.Errorf("Serve after SHUTDOWN: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("pgrouter did not stop after SHUTDOWN")
	}
	// The client ended with the shutdown (after its transaction).
	if _, err := c.Exec(ctx, "select 1"); err == nil {
		t.Error("client still served after shutdown")
	}
}

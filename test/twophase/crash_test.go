package twophase

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgrouter/pgrouter/test/testenv"
)

// pgrouterProc is a pgrouter process serving the test cluster's config
// with its own listen port and data_dir.
type pgrouterProc struct {
	cmd  *exec.Cmd
	addr string
	log  *os.File
}

// startPgrouter runs bin on a copy of the test config: listen on a fresh
// port, metrics off, state under dataDir; pause is PGROUTER_TEST_2PC_PAUSE.
func startPgrouter(t *testing.T, bin, dataDir, pause string) *pgrouterProc {
	t.Helper()
	src, err := os.ReadFile(env.Path)
	if err != nil {
		t.Fatal(err)
	}
	addr := testenv.FreeAddr(t)
	cfg := strings.Replace(string(src), "listen: 127.0.0.1:0\n", "listen: "+addr+"\ndata_dir: "+dataDir+"\n", 1)
	cfg = strings.Replace(cfg, "  listen: 127.0.0.1:0\n", "  listen: \"off\"\n", 1)
	path := filepath.Join(dataDir, "..", fmt.Sprintf("pgrouter-%d.yaml", time.Now().UnixNano()))
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(path + ".log")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--config", path)
	cmd.Env = append(os.Environ(), "PGROUTER_TEST_2PC_PAUSE="+pause)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &pgrouterProc{cmd: cmd, addr: addr, log: logf}
	t.Cleanup(p.kill)
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return p
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(path + ".log")
			t.Fatalf("pgrouter did not start listening on %s:\n%s", addr, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill sends SIGKILL: no shutdown code runs.
func (p *pgrouterProc) kill() {
	if p.cmd.ProcessState == nil {
		p.cmd.Process.Kill()
		p.cmd.Wait()
	}
	p.log.Close()
}

func (p *pgrouterProc) dsn() string {
	return fmt.Sprintf("postgres://app:app@%s/app?sslmode=disable", p.addr)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Kill pgrouter between PREPARE and the decision: on restart the
// transaction is rolled back on every shard. Kill it after the decision
// was logged: on restart it is committed on every shard. Either way no
// prepared transaction is left behind.
func TestCrashBetweenPhases(t *testing.T) {
	bin := testenv.BuildPgrouter(t)
	cases := []struct {
		pause     string
		committed bool
		base      int64
	}{
		{"after_prepare", false, 20000},
		{"after_decision", true, 30000},
	}
	for _, tc := range cases {
		t.Run(tc.pause, func(t *testing.T) {
			ctx := context.Background()
			dataDir := filepath.Join(t.TempDir(), "state")
			a, b := keysOn(t, 0, tc.base, 1), keysOn(t, 1, tc.base, 1)
			p := startPgrouter(t, bin, dataDir, tc.pause)
			c := connectTo(t, p.dsn(), pgx.QueryExecModeSimpleProtocol)
			tx, err := c.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range []int64{a[0], b[0]} {
				if _, err := tx.Exec(ctx, "insert into users (user_id, name) values ($1, 'crash')", k); err != nil {
					t.Fatal(err)
				}
			}
			commitDone := make(chan error, 1)
			go func() { commitDone <- tx.Commit(ctx) }()
			waitFor(t, "both shards to hold the prepared transaction", 30*time.Second, func() bool { return len(preparedLeft(t)) == 2 })
			if tc.committed {
				waitFor(t, "the decision record", 30*time.Second, func() bool {
					b, _ := os.ReadFile(filepath.Join(dataDir, "2pc.log"))
					return strings.HasPrefix(string(b), "commit ")
				})
			}
			p.kill()
			if err := <-commitDone; err == nil {
				t.Fatal("COMMIT succeeded although pgrouter was killed before answering")
			}
			if n := countOn(t, 0, "users", a) + countOn(t, 1, "users", b); n != 0 {
				t.Fatalf("%d row(s) visible while the transaction is in doubt", n)
			}

			startPgrouter(t, bin, dataDir, "")
			waitFor(t, "recovery to resolve the prepared transactions", 60*time.Second, func() bool { return len(preparedLeft(t)) == 0 })
			n0, n1 := countOn(t, 0, "users", a), countOn(t, 1, "users", b)
			want := 0
			if tc.committed {
				want = 1
			}
			if n0 != want || n1 != want {
				t.Fatalf("after recovery shard0 has %d, shard1 %d row(s); want %d on each", n0, n1, want)
			}
			if tc.committed {
				log, _ := os.ReadFile(filepath.Join(dataDir, "2pc.log"))
				if !strings.Contains(string(log), "done ") {
					t.Fatalf("decision log does not record the recovered commit as done:\n%s", log)
				}
			}
		})
	}
}

// A shard that cannot confirm COMMIT PREPARED (its connection dies after
// the decision) does not undo the commit: the client gets COMMIT with a
// WARNING, the decision stays pending, and recovery commits it there.
func TestShardLostAfterDecisionIsCommittedByRecovery(t *testing.T) {
	ctx := context.Background()
	bin := testenv.BuildPgrouter(t)
	dataDir := filepath.Join(t.TempDir(), "state")
	a, b := keysOn(t, 0, 130000, 1), keysOn(t, 1, 130000, 1)
	p := startPgrouter(t, bin, dataDir, "after_decision:3s")
	cfg, err := pgx.ParseConfig(p.dsn())
	if err != nil {
		t.Fatal(err)
	}
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	var notices []string
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) { notices = append(notices, n.Severity+": "+n.Message) }
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []int64{a[0], b[0]} {
		if _, err := tx.Exec(ctx, "insert into users (user_id, name) values ($1, 'lost')", k); err != nil {
			t.Fatal(err)
		}
	}
	commitDone := make(chan error, 1)
	go func() { commitDone <- tx.Commit(ctx) }()
	waitFor(t, "the decision record", 30*time.Second, func() bool {
		b, _ := os.ReadFile(filepath.Join(dataDir, "2pc.log"))
		return strings.HasPrefix(string(b), "commit ")
	})
	// While the commit pauses, shard1 drops pgrouter's connections (the
	// prepared transaction survives: it belongs to no session).
	if _, err := direct(t, 1).Exec(ctx, "select pg_terminate_backend(pid) from pg_stat_activity where datname = 'app' and pid <> pg_backend_pid() and backend_type = 'client backend'"); err != nil {
		t.Fatal(err)
	}
	if err := <-commitDone; err != nil {
		t.Fatalf("COMMIT after the decision must succeed, got %v", err)
	}
	if len(notices) == 0 || !strings.Contains(strings.Join(notices, "\n"), "shard1") {
		t.Fatalf("no WARNING naming shard1 for the pending commit; notices: %v", notices)
	}
	if countOn(t, 0, "users", a) != 1 {
		t.Fatal("shard0 did not commit")
	}
	waitFor(t, "recovery to commit the transaction on shard1", 30*time.Second, func() bool {
		return countOn(t, 1, "users", b) == 1 && len(preparedLeft(t)) == 0
	})
}

package localpg

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const crashHelperEnv = "LOCALPG_TEST_CRASH_HELPER"

func TestMain(m *testing.M) {
	// The crash test re-executes this binary as a cluster owner that it
	// then SIGKILLs; in that role we run no tests.
	if os.Getenv(crashHelperEnv) != "" {
		runCrashHelper()
		return
	}
	os.Exit(m.Run())
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// TestClusterLifecycle runs one 2×(primary+replica) cluster through
// replication, paused replay, a primary crash, a promotion and Close.
// The steps share the cluster to keep startup cost down; each asserts on
// its own shard so earlier steps cannot mask later ones.
func TestClusterLifecycle(t *testing.T) {
	ctx := testContext(t)
	began := time.Now()
	c, err := Start(ctx, Options{Shards: 2, Replicas: 1, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("2 shards × (1 primary + 1 replica) started in %s", time.Since(began).Round(time.Millisecond))
	t.Cleanup(func() { _ = c.Close() })

	if got := len(c.Nodes()); got != 4 {
		t.Fatalf("Nodes() = %d nodes, want 4", got)
	}
	t.Run("replication", func(t *testing.T) { testReplication(ctx, t, c) })
	t.Run("pause_replay", func(t *testing.T) { testPauseReplay(ctx, t, c.Shards[0]) })
	t.Run("kill_and_restart_primary", func(t *testing.T) { testKillRestart(ctx, t, c.Shards[0]) })
	t.Run("stop_primary_promote_replica", func(t *testing.T) { testPromote(ctx, t, c.Shards[1]) })
	t.Run("close_leaves_nothing", func(t *testing.T) { testCloseLeavesNothing(t, c) })
}

func testReplication(ctx context.Context, t *testing.T, c *Cluster) {
	for i, s := range c.Shards {
		if want := fmt.Sprintf("shard%d", i); s.Name != want || s.Primary.Name != want+"-primary" ||
			s.Replicas[0].Name != want+"-replica1" {
			t.Errorf("names: %s %s %s", s.Name, s.Primary.Name, s.Replicas[0].Name)
		}
		mustExec(ctx, t, s.Primary, "CREATE TABLE t (id int PRIMARY KEY, shard text)")
		mustExec(ctx, t, s.Primary, "INSERT INTO t VALUES (1, $1)", s.Name)
	}
	if err := c.WaitReplicated(ctx); err != nil {
		t.Fatal(err)
	}
	for _, s := range c.Shards {
		r := s.Replicas[0]
		var shard string
		if err := r.QueryRow(ctx, "SELECT shard FROM t WHERE id = 1").Scan(&shard); err != nil {
			t.Fatalf("%s: %v", r, err)
		}
		if shard != s.Name {
			t.Errorf("%s: row says %q, want %q", r, shard, s.Name)
		}
		assertRecovery(ctx, t, r, true)
		assertRecovery(ctx, t, s.Primary, false)
	}
}

func testPauseReplay(ctx context.Context, t *testing.T, s *Shard) {
	r := s.Replicas[0]
	if err := r.PauseReplay(ctx); err != nil {
		t.Fatal(err)
	}
	mustExec(ctx, t, s.Primary, "INSERT INTO t VALUES (2, 'paused')")
	// Give replay every chance to (wrongly) apply the row: wait until the
	// replica has *received* the WAL containing it.
	lsn, err := s.Primary.walTarget(ctx)
	if err != nil {
		t.Fatal(err)
	}
	err = poll(ctx, 10*time.Millisecond, func() (bool, error) {
		var ok bool
		err := r.QueryRow(ctx, "SELECT coalesce(pg_last_wal_receive_lsn() >= $1::pg_lsn, false)", lsn).Scan(&ok)
		return ok, err
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := countRows(ctx, t, r, 2); n != 0 {
		t.Fatalf("row written while replay was paused is visible on %s", r)
	}
	if err := r.ResumeReplay(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitReplicated(ctx); err != nil {
		t.Fatal(err)
	}
	if n := countRows(ctx, t, r, 2); n != 1 {
		t.Fatalf("after ResumeReplay %s has %d rows with id 2, want 1", r, n)
	}
}

func testKillRestart(ctx context.Context, t *testing.T, s *Shard) {
	p := s.Primary
	port := p.Port
	// A backend busy in a long computation never checks whether its
	// postmaster is alive: Kill must end it too.
	busy, err := p.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close(context.Background())
	go busy.Exec(ctx, "SELECT count(*) FROM generate_series(1, 1e10)")
	time.Sleep(200 * time.Millisecond)
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	if p.Running() {
		t.Fatal("primary still running after Kill")
	}
	if left := processesIn(p.DataDir); len(left) > 0 {
		t.Fatalf("processes %v still run in %s after Kill (backends outlived the postmaster)", left, p.DataDir)
	}
	if err := p.Exec(ctx, "SELECT 1"); err == nil {
		t.Fatal("killed primary still accepts connections")
	}
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if p.Port != port {
		t.Errorf("restart moved port %d → %d", port, p.Port)
	}
	// Committed data survives crash recovery; new writes replicate again.
	if n := countRows(ctx, t, p, 1); n != 1 {
		t.Fatalf("after crash recovery row 1 count = %d", n)
	}
	mustExec(ctx, t, p, "INSERT INTO t VALUES (3, 'after crash')")
	if err := s.WaitReplicated(ctx); err != nil {
		t.Fatal(err)
	}
	if n := countRows(ctx, t, s.Replicas[0], 3); n != 1 {
		t.Fatalf("write after restart did not reach the replica")
	}
}

func testPromote(ctx context.Context, t *testing.T, s *Shard) {
	r := s.Replicas[0]
	if err := s.Primary.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if s.Primary.Running() {
		t.Fatal("primary still running after Stop")
	}
	if err := r.Exec(ctx, "INSERT INTO t VALUES (4, 'promoted')"); err == nil {
		t.Fatal("replica accepted a write before promotion")
	}
	if err := r.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	assertRecovery(ctx, t, r, false)
	mustExec(ctx, t, r, "INSERT INTO t VALUES (4, 'promoted')")
	if n := countRows(ctx, t, r, 4); n != 1 {
		t.Fatalf("promoted replica lost its write")
	}
}

func testCloseLeavesNothing(t *testing.T, c *Cluster) {
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if pids := processesUnder(c.Dir); len(pids) > 0 {
		t.Fatalf("processes left under %s after Close: %v", c.Dir, pids)
	}
	if _, err := os.Stat(c.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temp dir %s still there after Close (stat: %v)", c.Dir, err)
	}
}

// TestStartFailureReportsLog checks that a server that cannot start yields
// an error quoting its log, and that nothing is left behind.
func TestStartFailureReportsLog(t *testing.T) {
	ctx := testContext(t)
	dir := reachableTempDir(t)
	_, err := Start(ctx, Options{Dir: filepath.Join(dir, "c"), Settings: map[string]string{"shared_buffers": "lots"}})
	if err == nil {
		t.Fatal("Start succeeded with shared_buffers = 'lots'")
	}
	if !strings.Contains(err.Error(), `invalid value for parameter "shared_buffers"`) {
		t.Fatalf("error does not quote the server log: %v", err)
	}
	t.Logf("Start error, as the caller sees it:\n%v", err)
	if pids := processesUnder(dir); len(pids) > 0 {
		t.Fatalf("processes left after failed Start: %v", pids)
	}
	if _, err := os.Stat(filepath.Join(dir, "c", "shard0-primary", "postgres.log")); err != nil {
		t.Fatalf("a caller-supplied Dir must be kept with its logs: %v", err)
	}
}

// TestKilledOwnerLeavesNoServers SIGKILLs a process that owns a running
// cluster: Pdeathsig must take the servers down, and the next Start must
// remove the stale directory.
func TestKilledOwnerLeavesNoServers(t *testing.T) {
	ctx := testContext(t)
	cmd, dir := startHelper(ctx, t)
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	err := poll(ctx, 50*time.Millisecond, func() (bool, error) { return len(processesUnder(dir)) == 0, nil })
	if err != nil {
		t.Fatalf("servers of a killed owner still running: %v (%v)", processesUnder(dir), err)
	}
	removeStaleTempDirs(t.Logf, 0)
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stale dir %s not removed (stat: %v)", dir, err)
	}
}

// runCrashHelper owns a cluster until it is killed or signalled.
func runCrashHelper() {
	c, err := Start(context.Background(), Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fmt.Println(c.Dir)
	select {} // wait to be killed
}

// startHelper runs the test binary as a cluster owner and returns the
// running command and its cluster directory.
func startHelper(ctx context.Context, t *testing.T) (*exec.Cmd, string) {
	cmd := exec.CommandContext(ctx, os.Args[0])
	cmd.Env = append(os.Environ(), crashHelperEnv+"=1")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("helper did not report its cluster: %v", err)
	}
	dir := strings.TrimSpace(line)
	if pids := processesUnder(dir); len(pids) == 0 {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("helper reported %s but no server runs there", dir)
	}
	return cmd, dir
}

// TestSignalClosesCluster sends SIGTERM to a cluster owner: the handler
// Start installed must stop the servers, remove the temp dir, and let the
// process die of the signal.
func TestSignalClosesCluster(t *testing.T) {
	ctx := testContext(t)
	cmd, dir := startHelper(ctx, t)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("helper exit: %v, want death by SIGTERM", err)
	}
	if ws, ok := exit.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
		t.Fatalf("helper exit status %v, want death by SIGTERM", exit)
	}
	if pids := processesUnder(dir); len(pids) > 0 {
		t.Fatalf("servers still running after SIGTERM: %v", pids)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temp dir %s not removed on SIGTERM (stat: %v)", dir, err)
	}
}

// TestReuseDir starts a cluster in a caller's Dir twice: the second Start
// must find the data of the first (with a new password) and stream again.
func TestReuseDir(t *testing.T) {
	ctx := testContext(t)
	dir := reachableTempDir(t)
	c, err := Start(ctx, Options{Dir: dir, Replicas: 1, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	mustExec(ctx, t, c.Shards[0].Primary, "CREATE TABLE t (id int PRIMARY KEY, shard text)")
	mustExec(ctx, t, c.Shards[0].Primary, "INSERT INTO t VALUES (1, 'first run')")
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c, err = Start(ctx, Options{Dir: dir, Replicas: 1, Password: "second", Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s := c.Shards[0]
	mustExec(ctx, t, s.Primary, "INSERT INTO t VALUES (2, 'second run')")
	if err := c.WaitReplicated(ctx); err != nil {
		t.Fatal(err)
	}
	if n := countRows(ctx, t, s.Replicas[0], 1) + countRows(ctx, t, s.Replicas[0], 2); n != 2 {
		t.Fatalf("replica of the reused cluster has %d of the 2 rows", n)
	}
	var app string
	if err := s.Primary.QueryRow(ctx, "SELECT application_name FROM pg_stat_replication").Scan(&app); err != nil {
		t.Fatal(err)
	}
	if app != s.Replicas[0].Name {
		t.Errorf("pg_stat_replication.application_name = %q, want %q", app, s.Replicas[0].Name)
	}
}

// reachableTempDir is a temp dir the servers' OS user can enter (MkdirTemp
// and t.TempDir make 0700 dirs, which that user cannot when we are root).
func reachableTempDir(t *testing.T) string {
	dir, err := os.MkdirTemp("", "localpg-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestConfLinesQuote(t *testing.T) {
	got := confLines(map[string]string{"b": `x\y`, "a": "it's"})
	want := "# written by localpg from Options.Settings over DefaultSettings()\na = 'it''s'\nb = 'x\\\\y'\n"
	if got != want {
		t.Fatalf("confLines = %q, want %q", got, want)
	}
}

func TestDSNEscapesPassword(t *testing.T) {
	n := &Node{Host: "127.0.0.1", Port: 5433, user: "postgres", password: "p@ss/word"}
	want := "postgres://postgres:p%40ss%2Fword@127.0.0.1:5433/app?sslmode=disable"
	if got := n.DSN("app"); got != want {
		t.Fatalf("DSN = %q, want %q", got, want)
	}
}

// processesUnder lists pids whose command line or working directory
// mentions dir (postgres backends chdir into their data directory).
func processesUnder(dir string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		cwd, _ := os.Readlink(filepath.Join("/proc", e.Name(), "cwd"))
		prefix := strings.TrimSuffix(dir, "/") + "/"
		if strings.Contains(string(cmdline), prefix) || strings.HasPrefix(cwd+"/", prefix) {
			if !isZombie(pid) {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

func isZombie(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true // gone
	}
	_, rest, _ := strings.Cut(string(stat), ") ")
	return strings.HasPrefix(rest, "Z")
}

func mustExec(ctx context.Context, t *testing.T, n *Node, sql string, args ...any) {
	t.Helper()
	if err := n.Exec(ctx, sql, args...); err != nil {
		t.Fatal(err)
	}
}

func countRows(ctx context.Context, t *testing.T, n *Node, id int) int {
	t.Helper()
	var count int
	if err := n.QueryRow(ctx, "SELECT count(*) FROM t WHERE id = $1", id).Scan(&count); err != nil {
		t.Fatal(err)
	}
	return count
}

func assertRecovery(ctx context.Context, t *testing.T, n *Node, want bool) {
	t.Helper()
	got, err := n.InRecovery(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("%s: pg_is_in_recovery() = %v, want %v", n, got, want)
	}
}

// processesIn lists live processes whose working directory is dir: every
// Postgres process chdirs to its data directory, whatever its process group.
func processesIn(dir string) []int {
	want, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil
	}
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if cwd, err := os.Readlink(filepath.Join("/proc", e.Name(), "cwd")); err == nil && cwd == want {
			if st, ok := procStat(pid); ok && st.state != "Z" {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

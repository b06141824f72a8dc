package pool

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// testServer is a throw-away Postgres for this package's tests: initdb + postgres
// as the "postgres" OS user on a free loopback port. TODO: switch to
// topology/localpg once it has landed (same Addr/Stop/Start shape).
type testServer struct {
	dir  string
	port int
	cred *syscall.Credential
	cmd  *exec.Cmd
	done chan error
}

const (
	testUser     = "postgres"
	testPassword = "postgres"
	pgBinDir     = "/usr/lib/postgresql/15/bin"
)

func startTestServer() (*testServer, error) {
	s := &testServer{}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root needs a postgres OS user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	dir, err := os.MkdirTemp("", "pgrouter-pooltest-")
	if err != nil {
		return nil, err
	}
	s.dir = dir
	pwfile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwfile, []byte(testPassword+"\n"), 0o600); err != nil {
		return nil, err
	}
	if s.cred != nil {
		for _, p := range []string{dir, pwfile} {
			if err := os.Chown(p, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
				return nil, err
			}
		}
	}
	initdb := s.command("initdb", "-D", s.dataDir(), "-U", testUser, "--pwfile="+pwfile,
		"--auth=scram-sha-256", "--no-sync", "-E", "UTF8", "--locale=C")
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	if s.port, err = freePort(); err != nil {
		return nil, err
	}
	return s, s.Start(context.Background())
}

func (s *testServer) dataDir() string { return filepath.Join(s.dir, "data") }

func (s *testServer) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

func (s *testServer) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(pgBinDir, name), args...)
	cmd.Dir = s.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Pdeathsig: syscall.SIGQUIT}
	return cmd
}

// Start runs the postmaster and waits until it accepts a login.
func (s *testServer) Start(ctx context.Context) error {
	log, err := os.OpenFile(filepath.Join(s.dir, "postgres.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer log.Close()
	s.cmd = s.command("postgres", "-D", s.dataDir(), "-p", strconv.Itoa(s.port), "-k", s.dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=150",
		"-c", "shared_buffers=16MB")
	s.cmd.Stdout, s.cmd.Stderr = log, log
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	s.done = make(chan error, 1)
	go func(cmd *exec.Cmd, done chan error) { done <- cmd.Wait() }(s.cmd, s.done)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		c, err := pgconn.Connect(ctx, s.dsn())
		if err == nil {
			return c.Close(ctx)
		}
		select {
		case err := <-s.done:
			return fmt.Errorf("postgres exited during startup: %v (see %s/postgres.log)", err, s.dir)
		case <-ctx.Done():
			return fmt.Errorf("postgres did not come up: %w", errors.Join(err, ctx.Err()))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop does a fast shutdown (SIGINT): backends are terminated, like a restart.
func (s *testServer) Stop() error {
	if s.cmd == nil {
		return nil
	}
	_ = s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd = nil
	return nil
}

func (s *testServer) Close() {
	_ = s.Stop()
	_ = os.RemoveAll(s.dir)
}

func (s *testServer) dsn() string {
	return fmt.Sprintf("postgres://%s:%s@%s/postgres?sslmode=disable", testUser, testPassword, s.Addr())
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

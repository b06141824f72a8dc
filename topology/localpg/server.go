package localpg

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// serverProc is one run of a postmaster that we forked and reap.
type serverProc struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed once the postmaster is reaped
	err    error         // its exit status, valid after exited
}

func (p *serverProc) pid() int { return p.cmd.Process.Pid }

// How long each stage of a stop may take before escalating.
const (
	fastStopTimeout      = 20 * time.Second
	immediateStopTimeout = 5 * time.Second
	killTimeout          = 5 * time.Second
	readyTimeout         = 2 * time.Minute
)

var errPortInUse = errors.New("port already in use")

// Start starts a stopped node again with the same data directory and port
// and waits until it accepts connections.
func (n *Node) Start(ctx context.Context) error {
	n.mu.Lock()
	running := n.proc != nil
	n.mu.Unlock()
	if running {
		return fmt.Errorf("localpg: %s is already running", n)
	}
	return n.startServer(ctx)
}

// startServer forks the postmaster (see spawner) and waits until it
// accepts connections. If it exits first, the error carries its log tail.
func (n *Node) startServer(ctx context.Context) error {
	logf, err := os.OpenFile(n.LogFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("localpg: %w", err)
	}
	defer logf.Close() // the child has its own copy of the descriptor
	if err := n.env.runAs.own(n.LogFile); err != nil {
		return err
	}
	args := []string{"-D", n.DataDir, "-p", strconv.Itoa(n.Port), "-c", "unix_socket_directories=" + n.Dir}
	if n.upstream != nil {
		// On the command line, not in postgresql.auto.conf: the primary's
		// port changes when a kept Dir is started again. application_name
		// makes pg_stat_replication show which replica is which.
		args = append(args, "-c", fmt.Sprintf("primary_conninfo=host=%s port=%d user=%s application_name=%s",
			n.upstream.Host, n.upstream.Port, n.user, n.Name))
	}
	cmd := exec.Command(filepath.Join(n.env.binDir, "postgres"), args...)
	cmd.Env = n.env.runAs.env()
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: n.env.runAs.cred}
	if err := n.env.spawner.start(cmd); err != nil {
		return fmt.Errorf("localpg: start %s: %w", n.Name, err)
	}
	p := &serverProc{cmd: cmd, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	n.mu.Lock()
	n.proc = p
	n.mu.Unlock()
	if err := n.waitReady(ctx, p); err != nil {
		_ = n.stopProc(p, 0)
		return err
	}
	return nil
}

// waitReady polls until a login over the Unix socket succeeds. (TCP is up
// by then: postgres opens every listen socket before it accepts any, and
// exits if it cannot bind its TCP address.)
func (n *Node) waitReady(ctx context.Context, p *serverProc) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	var lastErr error
	for {
		attempt, cancelAttempt := context.WithTimeout(ctx, 5*time.Second)
		conn, err := pgconn.Connect(attempt, n.localDSN())
		cancelAttempt()
		if err == nil {
			return conn.Close(ctx)
		}
		lastErr = err
		select {
		case <-p.exited:
			n.forget(p)
			tail := fileTail(n.LogFile, 20)
			if strings.Contains(tail, "could not bind") || strings.Contains(tail, "Address already in use") {
				return fmt.Errorf("localpg: %s: %w (port %d)", n.Name, errPortInUse, n.Port)
			}
			return fmt.Errorf("localpg: %s exited during startup (%v); log %s:\n%s", n.Name, p.err, n.LogFile, tail)
		case <-ctx.Done():
			return fmt.Errorf("localpg: %s not accepting connections: %w (last error: %v); log %s:\n%s",
				n.Name, ctx.Err(), lastErr, n.LogFile, fileTail(n.LogFile, 20))
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// forget clears n.proc if it still refers to p.
func (n *Node) forget(p *serverProc) {
	n.mu.Lock()
	if n.proc == p {
		n.proc = nil
	}
	n.mu.Unlock()
}

// Running reports whether the node's postmaster is alive.
func (n *Node) Running() bool {
	n.mu.Lock()
	p := n.proc
	n.mu.Unlock()
	if p == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Pid is the postmaster's process id, 0 if stopped.
func (n *Node) Pid() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.proc == nil {
		return 0
	}
	return n.proc.pid()
}

// Freeze SIGSTOPs the postmaster and every one of its children: a node
// that hangs with its connections open. resume SIGCONTs them all.
func (n *Node) Freeze() (resume func(), err error) {
	pid := n.Pid()
	if pid == 0 {
		return nil, fmt.Errorf("localpg: %s is not running", n)
	}
	pids := signalTree(pid, syscall.SIGSTOP)
	return func() {
		for _, p := range pids {
			_ = syscall.Kill(p, syscall.SIGCONT)
		}
	}, nil
}

// Stop shuts the node down like `pg_ctl stop -m fast` (SIGINT to the
// postmaster) and waits for it. If ctx ends first it escalates to an
// immediate shutdown and then SIGKILL, and returns ctx's error. A stopped
// node returns nil.
func (n *Node) Stop(ctx context.Context) error {
	n.mu.Lock()
	p := n.proc
	n.mu.Unlock()
	if p == nil {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.exited:
		n.forget(p)
		return nil
	case <-ctx.Done():
		if err := n.stopProc(p, 0); err != nil {
			return err
		}
		return fmt.Errorf("localpg: fast shutdown of %s: %w", n.Name, ctx.Err())
	}
}

// Kill SIGKILLs the postmaster and every one of its children (see
// killTree): a crash. Start brings the node back through crash recovery.
func (n *Node) Kill() error {
	n.mu.Lock()
	p := n.proc
	n.mu.Unlock()
	if p == nil {
		return fmt.Errorf("localpg: %s is not running", n)
	}
	pids := killTree(p.pid())
	select {
	case <-p.exited:
	case <-time.After(killTimeout):
		return fmt.Errorf("localpg: %s (pid %d) survived SIGKILL", n.Name, p.pid())
	}
	n.forget(p)
	return waitGone(pids, killTimeout)
}

// stopProc stops p for Close and failed starts: fast shutdown (skipped if
// fast is 0), then immediate shutdown, then SIGKILL of the process tree.
func (n *Node) stopProc(p *serverProc, fast time.Duration) error {
	steps := []struct {
		sig     syscall.Signal
		timeout time.Duration
	}{
		{syscall.SIGINT, fast},
		{syscall.SIGQUIT, immediateStopTimeout},
		{syscall.SIGKILL, killTimeout},
	}
	for _, s := range steps {
		if s.timeout == 0 {
			continue
		}
		var tree []int
		if s.sig == syscall.SIGKILL {
			tree = killTree(p.pid())
		} else {
			_ = p.cmd.Process.Signal(s.sig)
		}
		select {
		case <-p.exited:
			n.forget(p)
			return waitGone(tree, killTimeout)
		case <-time.After(s.timeout):
		}
	}
	return fmt.Errorf("localpg: could not stop %s (pid %d)", n.Name, p.pid())
}

// shutdown stops the node for Close.
func (n *Node) shutdown() error {
	n.mu.Lock()
	p := n.proc
	n.mu.Unlock()
	if p == nil {
		return nil
	}
	return n.stopProc(p, fastStopTimeout)
}

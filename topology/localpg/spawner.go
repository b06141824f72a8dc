package localpg

import (
	"errors"
	"os/exec"
	"runtime"
	"syscall"
)

// spawner forks long-lived server processes from one dedicated OS thread.
//
// Servers get Pdeathsig so the kernel stops them if we die without running
// Close. Linux sends that signal when the forking *thread* exits, not the
// process, and the Go runtime may retire an idle thread at any time; so the
// forks happen on a goroutine that has locked its thread and keeps it until
// stop. When stop is called the goroutine returns while still locked, which
// makes the runtime terminate that thread - by then Close has already
// stopped the servers, and any it could not stop get the signal as a last
// resort.
type spawner struct {
	reqs chan spawnRequest
	quit chan struct{}
	done chan struct{}
}

type spawnRequest struct {
	cmd  *exec.Cmd
	errc chan error
}

var errSpawnerStopped = errors.New("localpg: cluster is closed")

func newSpawner() *spawner {
	s := &spawner{
		reqs: make(chan spawnRequest),
		quit: make(chan struct{}),
		done: make(chan struct{}),
	}
	go s.loop()
	return s
}

func (s *spawner) loop() {
	runtime.LockOSThread() // never unlocked: see the type comment
	defer close(s.done)
	for {
		select {
		case r := <-s.reqs:
			r.errc <- r.cmd.Start()
		case <-s.quit:
			return
		}
	}
}

// start runs cmd.Start on the spawner thread with a parent-death signal of
// SIGQUIT (Postgres: immediate shutdown, which also stops the backends)
// and a fresh process group (so Kill can reach the backends too).
func (s *spawner) start(cmd *exec.Cmd) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGQUIT
	cmd.SysProcAttr.Setpgid = true
	r := spawnRequest{cmd: cmd, errc: make(chan error, 1)}
	select {
	case s.reqs <- r:
		return <-r.errc
	case <-s.quit:
		return errSpawnerStopped
	}
}

// stop ends the spawner thread and waits for it.
func (s *spawner) stop() {
	select {
	case <-s.quit:
	default:
		close(s.quit)
	}
	<-s.done
}

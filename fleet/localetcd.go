package fleet

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// LocalEtcd is a single-node etcd on free loopback ports, run from the
// installed etcd binary (Debian package etcd-server): `pgrouter demo
// --fleet N` and the fleet tests use it.
type LocalEtcd struct {
	URL          string // etcd://127.0.0.1:port/prefix
	bin, dir     string
	client, peer string
	logPath      string
	cmd          *exec.Cmd
}

// StartLocalEtcd starts etcd with its data and log under dir; prefix is the
// key prefix its URL names.
func StartLocalEtcd(dir, prefix string) (*LocalEtcd, error) {
	bin, err := exec.LookPath("etcd")
	if err != nil {
		return nil, errors.New("etcd is not installed: apt-get install -y etcd-server (scripts/deps.sh)")
	}
	e := &LocalEtcd{bin: bin, dir: filepath.Join(dir, "etcd"), logPath: filepath.Join(dir, "etcd.log")}
	if e.client, err = freePort(); err != nil {
		return nil, err
	}
	if e.peer, err = freePort(); err != nil {
		return nil, err
	}
	e.URL = "etcd://" + e.client + prefix
	return e, e.Restart()
}

// Restart starts etcd again on the same ports and data (after Stop).
func (e *LocalEtcd) Restart() error {
	logf, err := os.OpenFile(e.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	e.cmd = exec.Command(e.bin, "--data-dir", e.dir, "--name", "local",
		"--listen-client-urls", "http://"+e.client, "--advertise-client-urls", "http://"+e.client,
		"--listen-peer-urls", "http://"+e.peer, "--initial-advertise-peer-urls", "http://"+e.peer,
		"--initial-cluster", "local=http://"+e.peer)
	e.cmd.Stdout, e.cmd.Stderr = logf, logf
	// Its own process group: a Ctrl-C in the terminal reaches pgrouter
	// demo, which stops its members (revoking their leases) before etcd,
	// instead of killing etcd first under them. Pdeathsig: etcd does not
	// outlive a demo or test that dies without stopping it.
	e.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := e.cmd.Start(); err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.Dial("tcp", e.client)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			e.Stop()
			out, _ := os.ReadFile(e.logPath)
			return fmt.Errorf("etcd did not listen on %s within 30s:\n%s", e.client, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop kills etcd; its data stays (Restart).
func (e *LocalEtcd) Stop() {
	if e.cmd != nil && e.cmd.ProcessState == nil {
		e.cmd.Process.Kill()
		e.cmd.Wait()
	}
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

package localpg

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// runAs is the OS identity server binaries run under: the current user, or
// "postgres" when we are root (initdb and postgres refuse root).
type runAs struct {
	cred *syscall.Credential // nil = current user
	uid  int
	gid  int
	home string
}

func lookupRunAs() (runAs, error) {
	if os.Geteuid() != 0 {
		return runAs{uid: os.Geteuid(), gid: os.Getegid()}, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return runAs{}, fmt.Errorf("localpg: running as root needs an OS user \"postgres\" to run the servers: %w", err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return runAs{}, fmt.Errorf("localpg: unexpected uid/gid %q/%q for user postgres", u.Uid, u.Gid)
	}
	return runAs{
		cred: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true},
		uid:  uid, gid: gid, home: u.HomeDir,
	}, nil
}

// own makes path belong to the server user (a no-op when not root).
func (r runAs) own(path string) error {
	if r.cred == nil {
		return nil
	}
	if err := os.Chown(path, r.uid, r.gid); err != nil {
		return fmt.Errorf("localpg: chown %s: %w", path, err)
	}
	return nil
}

// mkdir creates dir (0700) owned by the server user.
func (r runAs) mkdir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("localpg: %w", err)
	}
	return r.own(dir)
}

// writeFile writes a file readable only by the server user.
func (r runAs) writeFile(path string, data []byte) error {
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("localpg: %w", err)
	}
	return r.own(path)
}

// command prepares a short-lived tool (initdb, pg_basebackup) run as the
// server user, in its own process group so a terminal's Ctrl-C reaches us
// first and we decide what to stop.
func (r runAs) command(ctx context.Context, binDir, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, name), args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: r.cred, Setpgid: true}
	cmd.Env = r.env()
	return cmd
}

// env is a minimal environment: no PG* variables of the caller leak into the
// tools, and HOME points somewhere the server user may read.
func (r runAs) env() []string {
	env := []string{"LC_ALL=C", "PATH=" + os.Getenv("PATH")}
	if r.home != "" {
		env = append(env, "HOME="+r.home)
	} else if h := os.Getenv("HOME"); h != "" {
		env = append(env, "HOME="+h)
	}
	return env
}

// runTool runs cmd and returns its output tail in the error on failure.
func runTool(cmd *exec.Cmd) error {
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("localpg: %s failed: %w\n%s", filepath.Base(cmd.Path), err, tailLines(out.String(), 20))
	}
	return nil
}

// tailLines returns the last n lines of s, indented for embedding in errors.
func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "    | " + strings.Join(lines, "\n    | ")
}

// fileTail returns the last n lines of a log file, for error messages.
func fileTail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("    (no log: %v)", err)
	}
	if len(data) > 64<<10 {
		data = data[len(data)-64<<10:]
	}
	return tailLines(string(data), n)
}

// checkReachable fails early, with a clear message, when the server user
// cannot traverse a parent of dir (typically a 0700 directory made by root,
// such as those from os.MkdirTemp); initdb would fail later with a bare
// "Permission denied".
func (r runAs) checkReachable(dir string) error {
	if r.cred == nil {
		return nil
	}
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		st, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("localpg: %w", err)
		}
		sys, ok := st.Sys().(*syscall.Stat_t)
		if ok && !canTraverse(st.Mode().Perm(), sys, r.uid, r.gid) {
			return fmt.Errorf("localpg: OS user postgres (uid %d) cannot reach %s: parent %s has mode %v owner uid %d; "+
				"chmod o+x it or use another Dir", r.uid, dir, p, st.Mode().Perm(), sys.Uid)
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

func canTraverse(perm os.FileMode, st *syscall.Stat_t, uid, gid int) bool {
	switch {
	case int(st.Uid) == uid:
		return perm&0o100 != 0
	case int(st.Gid) == gid:
		return perm&0o010 != 0
	default:
		return perm&0o001 != 0
	}
}

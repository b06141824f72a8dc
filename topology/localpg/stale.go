package localpg

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	tempDirPrefix = "localpg-"
	ownerFile     = "owner.pid" // pid of the process that created a temp cluster dir
)

// staleAfter keeps removeStaleTempDirs away from clusters still being set
// up by a process we cannot see (another PID namespace sharing /tmp).
const staleAfter = time.Minute

// removeStaleTempDirs deletes temp cluster directories left by processes
// that died without Close (their servers were stopped by Pdeathsig, but
// nothing removed the files). A directory is only removed when it is older
// than minAge, its owner process is gone, and no postmaster in it is alive.
func removeStaleTempDirs(logf func(string, ...any), minAge time.Duration) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), tempDirPrefix+"*"))
	for _, dir := range dirs {
		owner, ok := readPid(filepath.Join(dir, ownerFile))
		if !ok || processAlive(owner) || anyPostmasterAlive(dir) {
			continue
		}
		if st, err := os.Stat(dir); err != nil || time.Since(st.ModTime()) < minAge {
			continue
		}
		if err := os.RemoveAll(dir); err == nil {
			logf("localpg: removed stale %s (owner pid %d is gone)", dir, owner)
		}
	}
}

// anyPostmasterAlive checks every node's postmaster.pid: by pid, and by
// dialling its Unix socket, which also works across PID namespaces.
func anyPostmasterAlive(dir string) bool {
	pidFiles, _ := filepath.Glob(filepath.Join(dir, "*", "data", "postmaster.pid"))
	for _, f := range pidFiles {
		if pid, ok := readPid(f); ok && processAlive(pid) {
			return true
		}
		data, _ := os.ReadFile(f)
		// Lines: pid, datadir, start time, port, socket dir, …
		if lines := strings.Split(string(data), "\n"); len(lines) > 4 {
			sock := filepath.Join(lines[4], ".s.PGSQL."+strings.TrimSpace(lines[3]))
			if conn, err := net.DialTimeout("unix", sock, time.Second); err == nil {
				conn.Close()
				return true
			}
		}
	}
	return false
}

// readPid reads the first line of a pid file.
func readPid(path string) (int, bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	line, _, _ := strings.Cut(string(data), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	return pid, err == nil && pid > 0
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

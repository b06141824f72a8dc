package localpg

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

const (
	tempDirPrefix = "localpg-"
	ownerFile     = "owner.pid" // pid of the process that created a temp cluster dir
)

// removeStaleTempDirs deletes temp cluster directories left by processes
// that died without Close (their servers were stopped by Pdeathsig, but
// nothing removed the files). A directory is only removed when its owner
// process is gone and no postmaster in it is alive.
func removeStaleTempDirs(logf func(string, ...any)) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), tempDirPrefix+"*"))
	for _, dir := range dirs {
		owner, ok := readPid(filepath.Join(dir, ownerFile))
		if !ok || processAlive(owner) || anyPostmasterAlive(dir) {
			continue
		}
		if err := os.RemoveAll(dir); err == nil {
			logf("localpg: removed stale %s (owner pid %d is gone)", dir, owner)
		}
	}
}

func anyPostmasterAlive(dir string) bool {
	pidFiles, _ := filepath.Glob(filepath.Join(dir, "*", "data", "postmaster.pid"))
	for _, f := range pidFiles {
		if pid, ok := readPid(f); ok && processAlive(pid) {
			return true
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

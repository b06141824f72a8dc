package localpg

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// waitGroupGone waits until no live (non-zombie) process is left in process
// group pgid. After a SIGKILL the postmaster is reaped first while its
// backends may still be tearing down; until they are gone they hold the
// shared memory segment and a restart fails with "pre-existing shared
// memory block is still in use". Zombies have already let go of it.
func waitGroupGone(pgid int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		left := liveGroupMembers(pgid)
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("localpg: processes %v of group %d survived SIGKILL", left, pgid)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func liveGroupMembers(pgid int) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		state, group, ok := procStat(pid)
		if ok && group == pgid && state != "Z" && state != "X" {
			pids = append(pids, pid)
		}
	}
	return pids
}

// procStat reads the state and process group from /proc/PID/stat.
func procStat(pid int) (state string, pgrp int, ok bool) {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return "", 0, false
	}
	// "pid (comm) state ppid pgrp …"; comm may contain spaces and parens.
	i := strings.LastIndexByte(string(data), ')')
	if i < 0 {
		return "", 0, false
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 3 {
		return "", 0, false
	}
	pgrp, err = strconv.Atoi(f[2])
	return f[0], pgrp, err == nil
}

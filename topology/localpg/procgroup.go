package localpg

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// signalTree sends sig to a postmaster and all of its children and
// returns their pids. Every Postgres child calls setsid(), so the backends
// are not in the postmaster's process group: a group signal misses them
// (a group kill leaves them serving queries and holding the shared memory
// segment until they notice their parent died). They are found by parent
// pid while the postmaster is stopped, so it cannot fork a new one in
// between; once it is dead they would belong to init.
func signalTree(pid int, sig syscall.Signal) []int {
	_ = syscall.Kill(pid, syscall.SIGSTOP)
	pids := append(childrenOf(pid), pid)
	for _, p := range pids {
		_ = syscall.Kill(p, sig)
	}
	return pids
}

// killTree SIGKILLs a postmaster and its children: a crash.
func killTree(pid int) []int {
	pids := signalTree(pid, syscall.SIGKILL)
	_ = syscall.Kill(-pid, syscall.SIGKILL) // anything else the spawner put in its group
	return pids
}

// waitGone waits until none of pids is a live (non-zombie) process. Until
// the backends are gone they hold the shared memory segment and a restart
// fails with "pre-existing shared memory block is still in use"; zombies
// have already let go of it.
func waitGone(pids []int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var left []int
		for _, p := range pids {
			if st, ok := procStat(p); ok && st.state != "Z" && st.state != "X" {
				left = append(left, p)
			}
		}
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("localpg: processes %v survived SIGKILL", left)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func childrenOf(parent int) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, ok := procStat(pid); ok && st.ppid == parent {
			pids = append(pids, pid)
		}
	}
	return pids
}

type procState struct {
	state string
	ppid  int
}

// procStat reads the state and parent pid from /proc/PID/stat.
func procStat(pid int) (procState, bool) {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return procState{}, false
	}
	// "pid (comm) state ppid pgrp …"; comm may contain spaces and parens.
	i := strings.LastIndexByte(string(data), ')')
	if i < 0 {
		return procState{}, false
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 2 {
		return procState{}, false
	}
	ppid, err := strconv.Atoi(f[1])
	return procState{state: f[0], ppid: ppid}, err == nil
}

package main

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
)

// The floors are what any Go proxy pays before doing work of its own:
// test/bench/floor forwards bytes between each client and its own
// Postgres connection, on goroutines (pgrouter's I/O shape), on one epoll
// loop (PgBouncer's), or on one epoll loop resuming a coroutine per
// client (blocking-style code on an event loop). Measured in the c32 scenario next to the
// proxies, they show how much of pgrouter's CPU per transaction is its
// I/O shape and how much its own work.
var floorModes = []string{"goroutines", "epoll", "coro"}

// floorTargets starts the floor forwarders once (a failure is noted and
// that floor left out of the run).
func (b *bench) floorTargets(ctx context.Context) []*Target {
	if b.floors == nil {
		b.floors = []*Target{}
		bin := filepath.Join(b.workdir, "floor")
		cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./test/bench/floor")
		cmd.Dir = b.root
		if out, err := cmd.CombinedOutput(); err != nil {
			b.note("floor forwarders not measured: go build: %v: %s", err, out)
			return nil
		}
		for _, mode := range floorModes {
			t, err := b.startFloor(ctx, bin, mode)
			if err != nil {
				b.note("floor-%s not measured: %v", mode, err)
				continue
			}
			b.floors = append(b.floors, t)
		}
	}
	return b.floors
}

func (b *bench) startFloor(ctx context.Context, bin, mode string) (*Target, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	d := b.direct
	listen := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cmd := exec.CommandContext(ctx, bin, "-mode", mode, "-listen", listen, "-backend", net.JoinHostPort(d.Host, strconv.Itoa(d.Port)))
	name := "floor-" + mode
	p, err := startProc(name, cmd, filepath.Join(b.workdir, name+".log"))
	if err != nil {
		return nil, err
	}
	t := &Target{Name: name, Host: "127.0.0.1", Port: port, User: d.User, Password: d.Password, DB: d.DB, Proc: p}
	if err := waitReady(ctx, t); err != nil {
		p.stop()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return t, nil
}

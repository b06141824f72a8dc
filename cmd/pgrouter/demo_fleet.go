package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/pgrouter/pgrouter/config"
	"github.com/pgrouter/pgrouter/fleet"
)

// demoFleet is `demo --fleet N`: a local etcd holding the demo config and N
// pgrouters on the one cluster, each a member of the fleet.
type demoFleet struct {
	etcd    *fleet.LocalEtcd
	members []*fleetMember
}

// startDemoFleet pushes the config at path to a new local etcd under dir
// and starts n members; member i listens on the configured port + i (port
// 0 stays 0: each gets its own).
func startDemoFleet(ctx context.Context, n int, dir, path string, log *slog.Logger) (*demoFleet, error) {
	etcd, err := fleet.StartLocalEtcd(dir, "/pgrouter-demo")
	if err != nil {
		return nil, err
	}
	d := &demoFleet{etcd: etcd}
	data, err := os.ReadFile(path)
	if err == nil {
		err = pushOnce(ctx, etcd.URL, data, path)
	}
	for i := 0; i < n && err == nil; i++ {
		var m *fleetMember
		rewrite := func(cfg *config.Config) {
			cfg.Listen = shiftPort(cfg.Listen, i)
			if cfg.Metrics.Listen != "off" {
				cfg.Metrics.Listen = shiftPort(cfg.Metrics.Listen, i)
			}
			cfg.DataDir = filepath.Join(dir, fmt.Sprintf("pgrouter-%d-data", i+1))
		}
		memberLog := log.With("member", i+1)
		m, err = joinFleet(ctx, etcd.URL, rewrite, memberLog, func(*config.Config) *slog.Logger { return memberLog })
		if err == nil {
			d.members = append(d.members, m)
		}
	}
	if err != nil {
		d.stop(0)
		return nil, err
	}
	return d, nil
}

func pushOnce(ctx context.Context, url string, data []byte, source string) error {
	st, err := fleet.Dial(url, nil)
	if err != nil {
		return err
	}
	defer st.Close()
	_, err = st.Push(ctx, data, source, false)
	return err
}

// reload applies the newest version on every member (SIGHUP).
func (d *demoFleet) reload() {
	for _, m := range d.members {
		m.reload()
	}
}

// shutdownGrace bounds the shutdown of the members after the first.
const shutdownGrace = 5 * time.Second

// stop closes the members' instances from index from on (runUntilSignal
// closed the ones before), then their fleet memberships, then etcd.
func (d *demoFleet) stop(from int) {
	for i, m := range d.members {
		if i >= from {
			ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
			m.inst.Close(ctx)
			cancel()
		}
		m.fl.Close()
	}
	d.etcd.Stop()
}

// dsns lists the members' client DSNs.
func (d *demoFleet) dsns() []string {
	var out []string
	for _, m := range d.members {
		out = append(out, "postgres://app:app@"+m.inst.Addr+"/app?sslmode=disable")
	}
	return out
}

// shiftPort adds i to addr's port (port 0 stays 0).
func shiftPort(addr string, i int) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	p, err := strconv.Atoi(port)
	if err != nil || p == 0 {
		return addr
	}
	return net.JoinHostPort(host, strconv.Itoa(p+i))
}

package proxy

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pgrouter/pgrouter/config"
	"github.com/pgrouter/pgrouter/topology"
)

// Instance is a running pgrouter: topology monitors, the client listener and
// the metrics endpoint. serve, demo and the integration tests all use it.
type Instance struct {
	Server      *Server
	Topology    *topology.Topology
	Addr        string // client listen address actually bound
	MetricsAddr string // "" when metrics are off

	cancel  context.CancelFunc
	metrics *http.Server
	done    chan error
	serve   func() // starts accepting clients; nil once called
	ln      net.Listener
}

// Start brings pgrouter up on cfg and returns once it accepts clients.
func Start(ctx context.Context, cfg *config.Config, log *slog.Logger, opts ...Option) (*Instance, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	topo, err := topology.New(cfg, log)
	if err != nil {
		return nil, err
	}
	if o.fleet && cfg.Cluster.PoolBudget > 0 {
		topo.SetPoolCap(0) // no backend before the fleet grants this member its share
	}
	srv, err := New(cfg, topo, log)
	if err != nil {
		topo.Close()
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		topo.Close()
		return nil, fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	mctx, cancel := context.WithCancel(context.Background())
	topo.Start(mctx)
	if err := srv.startTwoPhase(mctx, cfg, o.twoPhase); err != nil {
		ln.Close()
		cancel()
		topo.Close()
		return nil, err
	}
	if err := srv.reshard.Recover(); err != nil {
		ln.Close()
		cancel()
		topo.Close()
		return nil, fmt.Errorf("resuming the unfinished reshard in %s: %w", cfg.DataDir, err)
	}
	inst := &Instance{Server: srv, Topology: topo, Addr: ln.Addr().String(), cancel: cancel, done: make(chan error, 1)}
	srv.Metrics.watch(topo, srv)
	if addr := cfg.Metrics.Listen; addr != "" && addr != "off" {
		mln, err := net.Listen("tcp", addr)
		if err != nil {
			ln.Close()
			inst.Close(ctx)
			return nil, fmt.Errorf("metrics listen %s: %w", addr, err)
		}
		inst.MetricsAddr = mln.Addr().String()
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(srv.Metrics.Registry, promhttp.HandlerOpts{}))
		if cfg.Metrics.PProf {
			// Opt-in: the listener has no authentication, and profiles (heap,
			// goroutines) show query text and cost CPU on demand.
			mux.HandleFunc("/debug/pprof/", pprof.Index)
			mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		}
		inst.metrics = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go inst.metrics.Serve(mln)
	}
	inst.ln = ln
	inst.serve = func() {
		go func() { inst.done <- srv.Serve(ln) }()
		log.Info("pgrouter listening", "addr", inst.Addr, "metrics", inst.MetricsAddr, "shards", len(cfg.Shards))
	}
	if !o.deferred {
		inst.Serve()
	}
	return inst, nil
}

// Serve starts accepting clients (once; Start does it unless DeferServe).
func (i *Instance) Serve() {
	if i.serve != nil {
		i.serve()
		i.serve = nil
	}
}

// Done reports when the listener stops (nil after Close).
func (i *Instance) Done() <-chan error { return i.done }

// Close shuts down gracefully: running transactions may finish until ctx ends.
func (i *Instance) Close(ctx context.Context) {
	if i.serve != nil { // never served: Shutdown does not know the listener
		i.ln.Close()
	}
	i.Server.reshard.Close()
	i.Server.Shutdown(ctx)
	if i.metrics != nil {
		i.metrics.Close()
	}
	i.cancel()
	i.Topology.Close()
}

// Reload validates and applies a new config file; on error the old config
// stays. Both outcomes are logged (source "api").
func (i *Instance) Reload(path string, force bool) error {
	return i.Server.Reload(path, force, "api")
}

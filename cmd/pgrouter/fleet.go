package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/pgrouter/pgrouter/config"
	"github.com/pgrouter/pgrouter/fleet"
	"github.com/pgrouter/pgrouter/proxy"
	"github.com/pgrouter/pgrouter/proxy/twophase"
	"github.com/pgrouter/pgrouter/router/sharding"
)

// hostFlags are serve's per-host settings: in a fleet every member loads the
// same config, so what differs between hosts comes from the command line.
type hostFlags struct {
	listen, metricsListen, dataDir string
}

func (h *hostFlags) add(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&h.listen, "listen", "", "client listen address (overrides listen: in the config)")
	f.StringVar(&h.metricsListen, "metrics-listen", "", "metrics listen address (overrides metrics.listen)")
	f.StringVar(&h.dataDir, "data-dir", "", "data directory: the two-phase commit log and instance id (overrides data_dir)")
}

// rewrite applies the flags to a loaded config.
func (h *hostFlags) rewrite(cfg *config.Config) {
	if h.listen != "" {
		cfg.Listen = h.listen
	}
	if h.metricsListen != "" {
		cfg.Metrics.Listen = h.metricsListen
	}
	if h.dataDir != "" {
		cfg.DataDir = h.dataDir
	} else if fleet.IsURL(cfg.Path) {
		cfg.DataDir = "pgrouter-data" // the default next to "the file" means nothing for etcd
	}
}

// serveFleet runs a fleet member: config from etcd, registered under a
// lease, applying every version pushed, until a signal.
func serveFleet(cmd *cobra.Command, url string, h *hostFlags, pprof bool) error {
	rewrite := func(cfg *config.Config) {
		h.rewrite(cfg)
		cfg.Metrics.PProf = cfg.Metrics.PProf || pprof
	}
	m, err := joinFleet(cmd.Context(), url, rewrite, buildLogger(cmd, nil), func(cfg *config.Config) *slog.Logger { return buildLogger(cmd, cfg) })
	if err != nil {
		return err
	}
	defer m.fl.Close() // after the instance closed: its lease goes, others rebalance
	return runUntilSignal(m.inst, m.cfg, m.reload, m.log)
}

// fleetMember is one running member of a fleet.
type fleetMember struct {
	inst *proxy.Instance
	fl   *fleet.Fleet
	cfg  *config.Config // the version it started on
	log  *slog.Logger
}

// reload applies the newest published version (SIGHUP).
func (m *fleetMember) reload() { m.fl.ReloadLocal(context.Background()) }

// joinFleet starts one member: load the newest version from etcd (each
// version adapted by rewrite), start pgrouter on it, register it. logFor
// gives the member's logger once the config (its log: settings) is known.
func joinFleet(ctx context.Context, url string, rewrite func(*config.Config), early *slog.Logger,
	logFor func(*config.Config) *slog.Logger) (*fleetMember, error) {
	fl, cfg, err := fleet.Open(ctx, url, fleet.Options{Rewrite: rewrite, Log: early})
	if err != nil {
		return nil, err
	}
	log := logFor(cfg)
	fl.SetLogger(log)
	shared := func(instance string) (twophase.Shared, error) { return fl.TwoPhase(ctx, instance) }
	inst, err := proxy.Start(ctx, cfg, log, proxy.InFleet(shared), proxy.DeferServe())
	if err != nil {
		fl.Close()
		return nil, err
	}
	inst.Server.SetVersion(versionLine())
	for _, c := range fl.Collectors() {
		inst.Server.Metrics.Registry.MustRegister(c)
	}
	if err := fl.Join(ctx, fleetLocal{inst}, inst.Addr); err != nil {
		inst.Close(ctx)
		fl.Close()
		return nil, fmt.Errorf("joining the fleet: %w", err)
	}
	inst.Server.SetFleet(fl)
	inst.Serve() // joined: the fleet's reshard marks and holds are in place
	return &fleetMember{inst: inst, fl: fl, cfg: cfg, log: log}, nil
}

// fleetLocal is the running instance as the fleet drives it.
type fleetLocal struct{ inst *proxy.Instance }

func (l fleetLocal) ApplyConfig(cfg *config.Config, force bool) error {
	return l.inst.Server.ReloadConfig(cfg, force)
}

// Pause returns once running transactions ended or pool.shutdown_timeout
// passed; those still running then finish on their own, as with PAUSE.
func (l fleetLocal) Pause(_ context.Context, db string) error {
	l.inst.Server.Pause(db)
	return nil
}

func (l fleetLocal) Resume(db string) error { l.inst.Server.Resume(db); return nil }

func (l fleetLocal) HoldMoves(ctx context.Context, id string, next *config.Config, refuseAfter time.Duration) error {
	return l.inst.Server.HoldMoves(ctx, id, next, refuseAfter)
}
func (l fleetLocal) SwitchMoves(id string, next *config.Config) error {
	return l.inst.Server.SwitchMoves(id, next)
}
func (l fleetLocal) HoldKeys(ctx context.Context, id string, moves []sharding.Move, refuseAfter time.Duration) error {
	return l.inst.Server.HoldKeys(ctx, id, moves, refuseAfter)
}
func (l fleetLocal) SwitchKeys(id string, moves []sharding.Move) error {
	return l.inst.Server.SwitchKeys(id, moves)
}
func (l fleetLocal) ReleaseMoves(id string) { l.inst.Server.ReleaseMoves(id) }
func (l fleetLocal) HeldReshard() string    { return l.inst.Server.HeldReshard() }
func (l fleetLocal) SetReshardMarks(copies, leftovers []sharding.Move) {
	l.inst.Server.SetReshardMarks(copies, leftovers)
}
func (l fleetLocal) SetPoolCap(n int)    { l.inst.Topology.SetPoolCap(n) }
func (l fleetLocal) MaxPoolTotal() int   { return l.inst.Topology.MaxPoolTotal() }
func (l fleetLocal) Fence(reason string) { l.inst.Server.Fence(reason) }
func (l fleetLocal) Unfence()            { l.inst.Server.Unfence() }

func newConfigPushCmd() *cobra.Command {
	var etcd string
	var force bool
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "push FILE --etcd etcd://host:2379/prefix",
		Short: "Validate a config file and publish it to a fleet as a new version",
		Long: `push validates FILE as "config check" does (every error with file:line) and
publishes it in etcd as the next version, atomically. Every member of the
fleet applies it as a whole and reports it (SHOW FLEET). With --wait, push
waits that long for every live member to run the new version and fails
naming the members that do not. --force applies changes that move data
(as RELOAD FORCE). When etcd is unreachable the push is refused.`,
		Example: "  pgrouter config push pgrouter.yaml --etcd etcd://127.0.0.1:2379/pgrouter",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if etcd == "" {
				return errors.New("--etcd etcd://host:port/prefix is required")
			}
			data, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			st, err := fleet.Dial(etcd, nil)
			if err != nil {
				return err
			}
			defer st.Close()
			v, err := st.Push(cmd.Context(), data, args[0], force)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: published as version %d at %s\n", args[0], v, etcd)
			if wait <= 0 {
				return nil
			}
			return reportRollout(cmd, st, v, wait)
		},
	}
	cmd.Flags().StringVar(&etcd, "etcd", "", "the fleet's etcd: etcd://host:port[,host:port…]/prefix")
	cmd.Flags().BoolVar(&force, "force", false, "apply changes that move data between shards (as RELOAD FORCE)")
	cmd.Flags().DurationVar(&wait, "wait", 5*time.Second, "wait this long for every live member to run the version (0: do not wait)")
	return cmd
}

// reportRollout waits until every live member runs version v.
func reportRollout(cmd *cobra.Command, st *fleet.Store, v int64, wait time.Duration) error {
	lagging, live, err := st.AwaitVersion(cmd.Context(), v, wait)
	if err != nil {
		return err
	}
	if live == 0 {
		fmt.Fprintf(cmd.OutOrStdout(), "no member is running yet: each one starts on version %d (serve --config %s)\n", v, st.URL())
		return nil
	}
	if len(lagging) > 0 {
		for _, m := range lagging {
			fmt.Fprintf(cmd.ErrOrStderr(), "member %s still runs version %d: %s\n", m.ID, m.Version, m.Health)
		}
		return exitCode(1)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "every live member runs version %d\n", v)
	return nil
}

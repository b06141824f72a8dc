package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/pgrouter/pgrouter/config"
	"github.com/pgrouter/pgrouter/fleet"
	"github.com/pgrouter/pgrouter/proxy"
)

func newServeCmd() *cobra.Command {
	var path string
	var watch, pprof bool
	var host hostFlags
	cmd := &cobra.Command{
		Use:   "serve --config FILE|etcd://host:2379/prefix",
		Short: "Run the proxy",
		Long: `serve runs the proxy on the config file. SIGHUP and the admin console's RELOAD
re-read the file; with --watch-config pgrouter also polls it every second
and reloads when its content changes. A file that does not validate is
logged (every error with file:line) and the running config stays.

With --config etcd://host:2379[,host2:2379]/prefix pgrouter is a member of a
fleet: it loads the newest version published with "config push", applies
every later one as a whole, registers itself (SHOW FLEET) and takes its
share of cluster.pool_budget; --listen, --metrics-listen and --data-dir set
what differs between the members' hosts.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if fleet.IsURL(path) {
				return serveFleet(cmd, path, &host, pprof)
			}
			cfg, err := config.Load(path)
			if err != nil {
				return err
			}
			if cfg.Cluster.PoolBudget > 0 {
				return fmt.Errorf("%s: cluster.pool_budget is a fleet's budget: serve --config etcd://host:2379/prefix", path)
			}
			host.rewrite(cfg)
			log := buildLogger(cmd, cfg)
			cfg.Metrics.PProf = cfg.Metrics.PProf || pprof
			inst, err := proxy.Start(cmd.Context(), cfg, log)
			if err != nil {
				return err
			}
			inst.Server.SetVersion(versionLine())
			if watch {
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				go inst.WatchConfig(ctx, path, time.Second)
			}
			return runUntilSignal(inst, cfg, func() { inst.Server.Reload(path, false, "sighup") }, log)
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "pgrouter.yaml", "config file")
	cmd.Flags().BoolVar(&watch, "watch-config", false, "reload when the config file's content changes (polled every second)")
	host.add(cmd)
	cmd.Flags().BoolVar(&pprof, "pprof", false, "serve /debug/pprof/ on the metrics listener (as metrics.pprof: true; no authentication there)")
	return cmd
}

// runUntilSignal serves until SIGINT/SIGTERM (graceful shutdown) and reloads on SIGHUP.
func runUntilSignal(inst *proxy.Instance, cfg *config.Config, reload func(), log *slog.Logger) error {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	for {
		select {
		case err := <-inst.Done():
			return err
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				reload() // logs either outcome
				continue
			}
			timeout := cfg.Pool.ShutdownTimeout.D()
			if timeout <= 0 {
				timeout = 30 * time.Second
			}
			log.Info("shutting down", "signal", sig.String(), "deadline", timeout.String())
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			inst.Close(ctx)
			cancel()
			return nil
		}
	}
}

// buildLogger makes the slog logger from the root's --log-format/--log-level;
// a flag not given on the command line takes the config's log.format /
// log.level (cfg may be nil: flag defaults). It writes to the command's
// stderr (os.Stderr, unless run was given another writer: tests).
func buildLogger(cmd *cobra.Command, cfg *config.Config) *slog.Logger {
	return buildLoggerTo(cmd, cfg, cmd.ErrOrStderr())
}

// buildLoggerTo is buildLogger writing to w.
func buildLoggerTo(cmd *cobra.Command, cfg *config.Config, w io.Writer) *slog.Logger {
	format, _ := cmd.Flags().GetString("log-format")
	levelName, _ := cmd.Flags().GetString("log-level")
	if cfg != nil {
		if !cmd.Flags().Changed("log-format") && cfg.Log.Format != "" {
			format = cfg.Log.Format
		}
		if !cmd.Flags().Changed("log-level") && cfg.Log.Level != "" {
			levelName = cfg.Log.Level
		}
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(levelName)); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/pgrouter/pgrouter/config"
	"github.com/pgrouter/pgrouter/proxy"
)

func newServeCmd() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "serve --config FILE",
		Short: "Run the proxy",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := buildLogger(cmd)
			cfg, err := config.Load(path)
			if err != nil {
				return err
			}
			inst, err := proxy.Start(cmd.Context(), cfg, log)
			if err != nil {
				return err
			}
			inst.Server.SetVersion(versionLine())
			return runUntilSignal(inst, cfg, path, log)
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "pgrouter.yaml", "config file")
	return cmd
}

// runUntilSignal serves until SIGINT/SIGTERM (graceful shutdown) and reloads on SIGHUP.
func runUntilSignal(inst *proxy.Instance, cfg *config.Config, path string, log *slog.Logger) error {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	for {
		select {
		case err := <-inst.Done():
			return err
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				if err := inst.Reload(path, false); err != nil {
					log.Error("reload refused; keeping the running config", "file", path, "err", err.Error())
				} else {
					log.Info("config reloaded", "file", path)
				}
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

// buildLogger makes the slog logger from the root's --log-format/--log-level.
func buildLogger(cmd *cobra.Command) *slog.Logger {
	format, _ := cmd.Flags().GetString("log-format")
	levelName, _ := cmd.Flags().GetString("log-level")
	var level slog.Level
	if err := level.UnmarshalText([]byte(levelName)); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if format == "text" {
		return slog.New(slog.NewTextHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, opts))
}

var _ = fmt.Sprint

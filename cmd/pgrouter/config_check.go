package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/pgrouter/pgrouter/config"
)

func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Work with pgrouter configuration files",
	}
	cmd.AddCommand(newConfigCheckCmd(), newConfigPushCmd())
	return cmd
}

func newConfigCheckCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "check FILE...",
		Short: "Validate configuration files without starting anything",
		Long: `Loads each file exactly as "pgrouter serve" would (including ${VAR}
expansion from the environment) and prints either a one-line summary or every
problem found, as file:line: key: message. Exits 1 if any file has problems.`,
		Example: "  pgrouter config check examples/pgrouter.yaml",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			failed := false
			for _, path := range args {
				cfg, err := config.Load(path)
				if err != nil {
					fmt.Fprintln(cmd.ErrOrStderr(), err)
					failed = true
					continue
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: OK (%s, %s, %s)\n", path,
					plural(len(cfg.Shards), "shard")+spares(cfg), plural(len(cfg.Databases), "database"), plural(len(cfg.Users), "user"))
			}
			if failed {
				return exitCode(1)
			}
			return nil
		},
	}
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// spares notes the shards that own no hash keys (hash: []), if any.
func spares(cfg *config.Config) string {
	n := 0
	for _, s := range cfg.Shards {
		if s.Hash != nil && len(s.Hash) == 0 {
			n++
		}
	}
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(" (%d spare)", n)
}

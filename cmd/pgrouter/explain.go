package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/pgrouter/pgrouter/config"
	"github.com/pgrouter/pgrouter/router"
)

func newExplainCmd() *cobra.Command {
	var path, db string
	cmd := &cobra.Command{
		Use:   "explain --config FILE 'SQL' [param ...]",
		Short: "Show where a statement would be routed and why (shards, role, deciding predicate or hint)",
		Long: "explain plans SQL with the router of a database from the config, without connecting\n" +
			"to anything. Parameters are text values for $1, $2, …; NULL stands for SQL NULL.",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := config.Load(path)
			if err != nil {
				return err
			}
			d := cfg.Database(db)
			if db == "" && len(cfg.Databases) > 0 {
				d = &cfg.Databases[0]
			}
			if d == nil {
				return fmt.Errorf("database %q is not in %s", db, path)
			}
			r, err := router.New(d, cfg.ShardNames())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "database:  %s\n%s", d.Name, r.Explain(args[0], args[1:]))
			return nil
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "pgrouter.yaml", "config file")
	cmd.Flags().StringVarP(&db, "database", "d", "", "database (default: the first in the config)")
	return cmd
}

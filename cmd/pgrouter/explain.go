package main

import (
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/spf13/cobra"

	"github.com/pgrouter/pgrouter/config"
	"github.com/pgrouter/pgrouter/router"
	"github.com/pgrouter/pgrouter/router/merge"
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
			r, err := router.ForConfig(cfg, d)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "database:  %s\n%s", d.Name, r.Explain(args[0], args[1:]))
			if what := crossShard(d, r, args[0], args[1:]); what != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "cross-shard: %s\n", what)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "pgrouter.yaml", "config file")
	cmd.Flags().StringVarP(&db, "database", "d", "", "database (default: the first in the config)")
	return cmd
}

// crossShard says what the proxy does with a statement that needs several
// shards ("" when it needs one): the router only knows that it does; the
// database's cross_shard and two_phase_commit settings and the merge engine
// decide the rest.
func crossShard(d *config.Database, r *router.Router, sql string, params []string) string {
	p, err := r.Prepare(sql)
	if err != nil {
		return ""
	}
	var args router.Args
	for _, v := range params {
		if v == "NULL" {
			args.Params = append(args.Params, nil)
		} else {
			args.Params = append(args.Params, []byte(v))
		}
	}
	rt, err := r.Route(p, args, router.Session{})
	switch {
	case err != nil || !rt.Multi || rt.Split:
		return ""
	case d.CrossShard == "deny":
		return "refused with 0A000: cross_shard is deny for database " + d.Name
	case p.Select:
		if _, err := merge.Analyze(sql); err != nil {
			var pe *pgconn.PgError
			if errors.As(err, &pe) {
				return fmt.Sprintf("refused with %s: %s", pe.Code, pe.Message)
			}
			return "refused: " + err.Error()
		}
		return "pgrouter runs it on every shard and merges the rows (docs/CROSS_SHARD.md)"
	case rt.Role == router.RolePrimary && d.TwoPhaseCommit:
		return "runs on every shard, committed on all of them with two-phase commit"
	case rt.Role == router.RolePrimary:
		return "runs on every shard, one transaction each, all committed only if all succeeded (two_phase_commit: true makes the commit atomic)"
	}
	return ""
}

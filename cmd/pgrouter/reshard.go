package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/spf13/cobra"
)

// reshardPoll is how often the CLI reads SHOW RESHARD.
const reshardPoll = 500 * time.Millisecond

func newReshardCmd() *cobra.Command {
	var to, admin, dirTable, dirTo, dirKeys string
	var resume, abort bool
	cmd := &cobra.Command{
		Use:   "reshard --to NEXT.yaml | --directory TABLE --keys K1,K2 --to-shard SHARD | --resume | --abort",
		Short: "Move rows to a new placement under live traffic, through a running pgrouter's admin console",
		Long: `reshard asks the serving pgrouter (its admin console, --admin) to move the rows
whose shard differs between its running config and NEXT.yaml: copy, catch up,
verify, cut over, clean up. NEXT.yaml is the whole config with the new
placement; at the cutover pgrouter replaces its config file with it (keeping
the old one as <file>.before-reshard). It then follows the progress until the
reshard is done. --directory moves keys of a directory-sharded table to
--to-shard the same way, pointing them there in the lookup table at the
cutover. --resume continues an interrupted reshard (after an error or a
restart of pgrouter); --abort undoes one that has not cut over yet.`,
		Example: "  pgrouter reshard --to next.yaml --admin postgres://admin:admin@127.0.0.1:6432/pgrouter",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var command string
			switch {
			case dirTable != "" && to == "" && !resume && !abort:
				if dirTo == "" || dirKeys == "" || strings.ContainsAny(dirKeys, " '") {
					return errors.New("--directory needs --to-shard SHARD and --keys K1,K2,… (no spaces or quotes)")
				}
				command = fmt.Sprintf("RESHARD DIRECTORY %s TO %s KEYS %s", dirTable, dirTo, dirKeys)
			case to != "" && !resume && !abort:
				abs, err := filepath.Abs(to)
				if err != nil {
					return err
				}
				command = "RESHARD TO '" + strings.ReplaceAll(abs, "'", "''") + "'"
			case to == "" && resume && !abort:
				command = "RESHARD RESUME"
			case to == "" && !resume && abort:
				command = "RESHARD ABORT"
			default:
				return errors.New("give exactly one of --to FILE, --directory TABLE, --resume, --abort")
			}
			return runReshard(cmd.Context(), admin, command, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "the next config file (the running one with the new placement)")
	cmd.Flags().StringVar(&dirTable, "directory", "", "a directory-sharded table whose --keys move to --to-shard")
	cmd.Flags().StringVar(&dirKeys, "keys", "", "with --directory: the keys, comma-separated")
	cmd.Flags().StringVar(&dirTo, "to-shard", "", "with --directory: the shard the keys move to")
	cmd.Flags().BoolVar(&resume, "resume", false, "continue an interrupted reshard")
	cmd.Flags().BoolVar(&abort, "abort", false, "undo a reshard that has not cut over")
	cmd.Flags().StringVar(&admin, "admin", envOr("PGROUTER_ADMIN", "postgres://admin:admin@127.0.0.1:6432/pgrouter?sslmode=disable"),
		"admin console DSN (env PGROUTER_ADMIN)")
	return cmd
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// runReshard sends command to the admin console, then follows SHOW RESHARD
// until the reshard stops running.
func runReshard(ctx context.Context, dsn, command string, out io.Writer) error {
	if ctx == nil {
		ctx = context.Background()
	}
	c, err := pgconn.Connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("admin console: %w", err)
	}
	defer c.Close(context.WithoutCancel(ctx))
	if _, err := c.Exec(ctx, command).ReadAll(); err != nil {
		return err
	}
	p := newProgress(out)
	for {
		st, err := showReshard(ctx, c)
		if err != nil {
			return err
		}
		p.show(st)
		if st["running"] != "true" {
			p.end()
			return reshardOutcome(st, command)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(reshardPoll):
		}
	}
}

// reshardOutcome is nil when the reshard ended as command wanted.
func reshardOutcome(st map[string]string, command string) error {
	want := "done"
	if command == "RESHARD ABORT" {
		want = "aborted"
	}
	if st["phase"] == want && st["error"] == "" {
		return nil
	}
	msg := fmt.Sprintf("reshard %s stopped in phase %s", st["id"], st["phase"])
	if st["error"] != "" {
		msg += ": " + st["error"]
	}
	return errors.New(msg + " (pgrouter reshard --resume continues it, --abort undoes it)")
}

func showReshard(ctx context.Context, c *pgconn.PgConn) (map[string]string, error) {
	res, err := c.Exec(ctx, "SHOW RESHARD").ReadAll()
	if err != nil {
		return nil, err
	}
	st := map[string]string{}
	if len(res) == 1 && len(res[0].Rows) == 1 {
		for i, f := range res[0].FieldDescriptions {
			st[f.Name] = string(res[0].Rows[0][i])
		}
	}
	return st, nil
}

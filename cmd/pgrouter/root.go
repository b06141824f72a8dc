package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

// newRootCmd builds the command tree. Each subcommand lives in its own file
// behind a newXxxCmd constructor, so commands can be added without touching
// the others.
func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "pgrouter",
		Short: "A PostgreSQL proxy that shards and splits reads from writes",
		Long: `pgrouter speaks the PostgreSQL wire protocol. Applications connect to it as
to one database; it pools backend connections, sends reads to replicas that
are fresh enough, and routes each query to the shard(s) that hold its rows.`,
		Version: version,
		// Errors are printed once, by run; usage only on --help.
		SilenceErrors:     true,
		SilenceUsage:      true,
		PersistentPreRunE: checkLogFlags,
	}
	root.SetVersionTemplate(versionLine() + "\n")
	flags := root.PersistentFlags()
	flags.String("log-format", "json", "log output format: json or text")
	flags.String("log-level", "info", "minimum log level: debug, info, warn or error")
	root.AddCommand(
		newServeCmd(),
		newDemoCmd(),
		newConfigCmd(),
		newVersionCmd(),
		newExplainCmd(),
		newReshardCmd(),
	)
	return root
}

// checkLogFlags rejects bad --log-format/--log-level values before any
// command runs, so a typo does not silently fall back to the default.
func checkLogFlags(cmd *cobra.Command, _ []string) error {
	format, _ := cmd.Flags().GetString("log-format")
	if format != "json" && format != "text" {
		return fmt.Errorf("--log-format %q: must be json or text", format)
	}
	level, _ := cmd.Flags().GetString("log-level")
	switch level {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("--log-level %q: must be debug, info, warn or error", level)
	}
	return nil
}

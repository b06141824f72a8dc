// Command pgrouter is a PostgreSQL wire-protocol proxy that shards and splits
// reads from writes. See docs/CONFIG.md for its configuration file.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/pgrouter/pgrouter/config"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one command line and returns the process exit code. It is
// main without the process: tests call it in-process.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var code exitCode
	if errors.As(err, &code) {
		return int(code) // the command already reported what went wrong
	}
	var cfgErrs config.Errors
	if errors.As(err, &cfgErrs) {
		fmt.Fprintln(stderr, cfgErrs) // already "file:line: key: msg", one per line
		return 1
	}
	fmt.Fprintln(stderr, "pgrouter:", err)
	return 1
}

// exitCode is returned by a command that has already printed its own
// diagnostics and only needs the process to exit with this status.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

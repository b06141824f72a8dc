package main

// Temporary stand-ins so the command tree builds before the real commands
// land. The engineer writing serve.go and demo.go deletes this file.

import (
	"errors"

	"github.com/spf13/cobra"
)

func newServeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "Run the proxy (not implemented yet)",
		RunE: func(*cobra.Command, []string) error {
			return errors.New("serve is not implemented yet")
		},
	}
}

func newDemoCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "demo",
		Short: "Start a local sharded cluster with pgrouter in front (not implemented yet)",
		RunE: func(*cobra.Command, []string) error {
			return errors.New("demo is not implemented yet")
		},
	}
}

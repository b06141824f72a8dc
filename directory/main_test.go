package directory

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/pgrouter/pgrouter/topology/localpg"
)

// cluster is one Postgres server holding the lookup tables of the tests
// that need a real lookup (postgres_test.go).
var cluster *localpg.Cluster

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := localpg.Start(ctx, localpg.Options{Shards: 1})
	if err != nil {
		fmt.Fprintln(os.Stderr, "directory tests need a local Postgres:", err)
		return 1
	}
	defer c.Close()
	cluster = c
	return m.Run()
}

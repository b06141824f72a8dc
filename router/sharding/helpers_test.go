package sharding

import (
	"fmt"
	"strings"
	"testing"

	"github.com/pgrouter/pgrouter/config"
)

// shardNames returns s0..s(n-1).
func shardNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("s%d", i)
	}
	return names
}

func mustNew(t testing.TB, tc *config.ShardedTable, n int) Func {
	t.Helper()
	f, err := New(tc, shardNames(n))
	if err != nil {
		t.Fatalf("New(%+v): %v", tc, err)
	}
	return f
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func ptr(s string) *string { return &s }

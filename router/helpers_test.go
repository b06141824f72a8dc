package router

import (
	"os"
	"testing"

	"github.com/pgrouter/pgrouter/config"
	"gopkg.in/yaml.v3"
)

// testRouter builds the router of testdata/routing.yaml's configuration.
func testRouter(t testing.TB) *Router {
	t.Helper()
	data, err := os.ReadFile("testdata/routing.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var g goldenFile
	if err := yaml.Unmarshal(data, &g); err != nil {
		t.Fatal(err)
	}
	r, err := New(&g.Database, g.Shards)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

var configOneShard = config.Database{Name: "one"}

package router

import (
	"bytes"
	"os"
	"testing"

	"github.com/pgrouter/pgrouter/config"
	"gopkg.in/yaml.v3"
)

// loadGolden reads and decodes one golden file of testdata.
func loadGolden(t testing.TB, path string) goldenFile {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	g, err := decodeGolden(data)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return g
}

// decodeGolden decodes a golden file strictly: an unknown (misspelt) key is
// an error, not a check that silently never runs.
func decodeGolden(data []byte) (goldenFile, error) {
	var g goldenFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	err := dec.Decode(&g)
	return g, err
}

// testRouter builds the router of testdata/routing.yaml's configuration.
func testRouter(t testing.TB) *Router {
	t.Helper()
	g := loadGolden(t, "testdata/routing.yaml")
	r, err := New(&g.Database, g.Shards)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

var configOneShard = config.Database{Name: "one"}

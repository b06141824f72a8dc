package readme

import (
	"os"
	"path/filepath"
	"testing"
)

// TestMain removes the pgrouter binary the tests built (tens of MB a run).
func TestMain(m *testing.M) {
	code := m.Run()
	if build.bin != "" {
		os.RemoveAll(filepath.Dir(build.bin))
	}
	os.Exit(code)
}

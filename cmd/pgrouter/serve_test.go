package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/pgrouter/pgrouter/config"
)

// The config's log.format/log.level apply unless the flag is given.
func TestBuildLoggerConfigAndFlags(t *testing.T) {
	cases := []struct {
		name      string
		args      []string
		format    string // config log.format
		level     string // config log.level
		wantJSON  bool
		wantDebug bool // a debug line is written
		wantInfo  bool // an info line is written
	}{
		{"defaults", nil, "", "", true, false, true},
		{"config text+debug", nil, "text", "debug", false, true, true},
		{"config warn", nil, "json", "warn", true, false, false},
		{"flag beats config", []string{"--log-format", "json", "--log-level", "info"}, "text", "warn", true, false, true},
		{"flag level only", []string{"--log-level", "debug"}, "text", "warn", false, true, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := newRootCmd()
			var buf bytes.Buffer
			root.SetErr(&buf)
			if err := root.ParseFlags(c.args); err != nil {
				t.Fatal(err)
			}
			cfg := &config.Config{Log: config.Log{Format: c.format, Level: c.level}}
			log := buildLogger(root, cfg)
			log.Debug("dbg line", "client_id", 7)
			log.Info("info line", "client_id", 7)
			out := buf.String()
			if got := strings.Contains(out, "dbg line"); got != c.wantDebug {
				t.Errorf("debug line written = %v, want %v:\n%s", got, c.wantDebug, out)
			}
			if got := strings.Contains(out, "info line"); got != c.wantInfo {
				t.Errorf("info line written = %v, want %v:\n%s", got, c.wantInfo, out)
			}
			for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
				if l == "" {
					continue
				}
				isJSON := json.Valid([]byte(l))
				if isJSON != c.wantJSON {
					t.Errorf("line %q: JSON = %v, want %v", l, isJSON, c.wantJSON)
				}
			}
		})
	}
}

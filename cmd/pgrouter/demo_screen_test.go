package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestDemoScreen: the demo's screen is human lines only (no JSON log line)
// and names the DSN, the log file and an explain command with the real
// config path; test/readme runs the commands against a live demo.
func TestDemoScreen(t *testing.T) {
	var b bytes.Buffer
	printDemoScreen(&b, demoScreen{shards: 2, replicas: 1, ready: 1500 * time.Millisecond,
		addr: "127.0.0.1:6432", metrics: "127.0.0.1:9930",
		config: "/tmp/localpg-1/pgrouter.yaml", logs: "/tmp/localpg-1/pgrouter.log"})
	out := b.String()
	screenHas(t, out,
		"dsn:      postgres://app:app@127.0.0.1:6432/app?sslmode=disable",
		"admin:    postgres://admin:admin@127.0.0.1:6432/pgrouter?sslmode=disable",
		"metrics:  http://127.0.0.1:9930/metrics",
		"logs:     /tmp/localpg-1/pgrouter.log",
		"explain --config /tmp/localpg-1/pgrouter.yaml 'select",
		"(removed on exit)",
		"press Ctrl-C to stop")
	if strings.Contains(out, "{") {
		t.Errorf("screen has a JSON-looking line:\n%s", out)
	}
}

// TestDemoScreenFleet: with --fleet the screen names the other members, the
// etcd URL and how to publish a changed config to every member.
func TestDemoScreenFleet(t *testing.T) {
	var b bytes.Buffer
	printDemoScreen(&b, demoScreen{shards: 2, addr: "127.0.0.1:6432", config: "/tmp/localpg-1/pgrouter.yaml",
		logs: "/tmp/localpg-1/pgrouter.log", etcd: "etcd://127.0.0.1:2379/pgrouter-demo",
		members: []string{"postgres://app:app@127.0.0.1:6433/app?sslmode=disable"}})
	screenHas(t, b.String(),
		"member 2: postgres://app:app@127.0.0.1:6433/app",
		"etcd:     etcd://127.0.0.1:2379/pgrouter-demo",
		"-c 'show fleet'",
		" config push /tmp/localpg-1/pgrouter.yaml --etcd etcd://127.0.0.1:2379/pgrouter-demo\n")
}

func screenHas(t *testing.T, screen string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(screen, want) {
			t.Errorf("screen lacks %q:\n%s", want, screen)
		}
	}
}

package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// demoScreen is what the demo tells its user once everything is up.
type demoScreen struct {
	shards, replicas int
	spares           int // empty shards (hash: []) to reshard into
	ready            time.Duration
	addr, metrics    string
	config, logs     string
	split            string   // --spare-shards: the split placement to reshard to
	kept             bool     // --dir: the cluster directory stays after exit
	etcd             string   // --fleet: the local etcd's URL
	members          []string // --fleet: the other members' DSNs
}

// printDemoScreen prints only human lines (the proxy logs elsewhere), so the
// DSN stays on screen. test/readme runs every line under "try:".
func printDemoScreen(w io.Writer, s demoScreen) {
	dsn := "postgres://app:app@" + s.addr + "/app?sslmode=disable"
	admin := "postgres://admin:admin@" + s.addr + "/pgrouter?sslmode=disable"
	fate := "removed on exit"
	if s.kept {
		fate = "kept after exit"
	}
	spare := ""
	if s.spares > 0 {
		spare = fmt.Sprintf(" + %d empty spare shard(s)", s.spares)
	}
	fmt.Fprintf(w, "\npgrouter demo ready in %.1fs: %d shard(s)%s x (1 primary + %d replica(s)), tables users and orders sharded by user_id, reference table plans\n\n",
		s.ready.Seconds(), s.shards, spare, s.replicas)
	fmt.Fprintf(w, "  dsn:      %s\n", dsn)
	fmt.Fprintf(w, "  admin:    %s\n", admin)
	for i, m := range s.members {
		fmt.Fprintf(w, "  member %d: %s\n", i+2, m)
	}
	if s.etcd != "" {
		fmt.Fprintf(w, "  etcd:     %s\n", s.etcd)
	}
	if s.metrics != "" {
		fmt.Fprintf(w, "  metrics:  http://%s/metrics\n", s.metrics)
	}
	fmt.Fprintf(w, "  config:   %s\n", s.config)
	if s.split != "" {
		fmt.Fprintf(w, "  reshard:  %s reshard --to %s --admin %q\n", selfCommand(), s.split, admin)
	}
	fmt.Fprintf(w, "  logs:     %s (JSON)\n", s.logs)
	fmt.Fprintf(w, "  data dir: %s (%s)\n", filepath.Dir(s.config), fate)
	fmt.Fprintf(w, "\ntry:\n")
	fmt.Fprintf(w, "  psql %q -c 'select * from users where user_id = 42'\n", dsn)
	fmt.Fprintf(w, "  psql %q -c 'select plan_id, count(*) from users group by plan_id order by plan_id'\n", dsn)
	fmt.Fprintf(w, "  psql %q -c 'show shards'\n", admin)
	fmt.Fprintf(w, "  %s explain --config %s 'select * from orders where user_id = $1' 42\n", selfCommand(), s.config)
	if s.etcd != "" {
		// Edit the config, then publish it: every member applies it.
		fmt.Fprintf(w, "  psql %q -c 'show fleet'\n", admin)
		fmt.Fprintf(w, "  %s config push %s --etcd %s\n", selfCommand(), s.config, s.etcd)
	}
	fmt.Fprintf(w, "\npress Ctrl-C to stop\n")
}

// selfCommand is how the user can run this binary again: as invoked
// (bin/pgrouter, pgrouter), or "go run ./cmd/pgrouter" under go run, whose
// binary is deleted when it exits.
func selfCommand() string {
	arg0 := os.Args[0]
	if strings.Contains(arg0, "go-build") {
		return "go run ./cmd/pgrouter"
	}
	return arg0
}

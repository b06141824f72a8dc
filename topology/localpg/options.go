package localpg

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Options describes the cluster to start. The zero value is one primary and
// no replicas in a temporary directory.
type Options struct {
	Shards   int // number of shards; 0 means 1
	Replicas int // streaming replicas per shard

	// Dir is where the cluster lives. "" creates a temporary directory that
	// Close removes. Otherwise the directory is created if missing and kept
	// after Close; data directories an earlier Start left there are reused
	// (no initdb/pg_basebackup; settings and the password are re-applied,
	// ports are picked afresh), missing ones are created.
	Dir string

	// BinDir holds initdb, postgres and pg_basebackup. "" means: $PG_BINDIR,
	// else `pg_config --bindir` if it contains initdb, else the newest
	// /usr/lib/postgresql/*/bin.
	BinDir string

	Password string            // password of superuser "postgres"; default "postgres"
	Settings map[string]string // postgresql.conf settings, overriding DefaultSettings

	// NoSignalHandler skips the SIGINT/SIGTERM handler that Start installs
	// (see the package doc). Set it when the program handles signals itself
	// and calls Close on its way out.
	NoSignalHandler bool

	Logf func(format string, args ...any) // optional progress log
}

// DefaultSettings are written to every node's postgresql.conf. They favour
// test speed over durability (fsync and full_page_writes are off);
// Options.Settings overrides any of them.
//
// synchronous_commit stays on: with fsync off it costs one write(2) per
// commit, and with it off a commit returns before its WAL is written, so
// pg_current_wal_lsn() sampled right after a commit can be *behind* that
// commit - which would make LSN-based read-your-writes look flaky.
func DefaultSettings() map[string]string {
	return map[string]string{
		"listen_addresses": "127.0.0.1",
		// logical: the reshard engine copies from a logical replication
		// slot's snapshot and streams pgoutput changes from it.
		"wal_level":             "logical",
		"max_wal_senders":       "16",
		"max_replication_slots": "16",
		"wal_keep_size":         "256MB",
		// A replica retries a lost primary every 5s by default; tests that
		// restart primaries would spend most of their time waiting.
		"wal_retrieve_retry_interval": "250ms",
		"hot_standby":                 "on",
		"max_connections":             "300",
		"max_prepared_transactions":   "64",
		"fsync":                       "off",
		"synchronous_commit":          "on", // see DefaultSettings' comment
		"full_page_writes":            "off",
		"shared_buffers":              "32MB",
		"password_encryption":         "scram-sha-256",
		"logging_collector":           "off",
		"log_destination":             "stderr",
		"log_line_prefix":             "%m [%p] %q%u@%d ",
	}
}

// withDefaults returns a copy of o with zero fields filled in.
func (o Options) withDefaults() (Options, error) {
	if o.Shards == 0 {
		o.Shards = 1
	}
	if o.Shards < 0 || o.Replicas < 0 {
		return o, fmt.Errorf("localpg: Shards (%d) and Replicas (%d) must not be negative", o.Shards, o.Replicas)
	}
	if o.Password == "" {
		o.Password = "postgres"
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if o.BinDir == "" {
		dir, err := FindBinDir()
		if err != nil {
			return o, err
		}
		o.BinDir = dir
	}
	settings := DefaultSettings()
	for k, v := range o.Settings {
		settings[k] = v
	}
	o.Settings = settings
	return o, nil
}

// FindBinDir locates the PostgreSQL server binaries: $PG_BINDIR, else
// `pg_config --bindir` if it contains initdb, else the newest
// /usr/lib/postgresql/<version>/bin.
func FindBinDir() (string, error) {
	if dir := os.Getenv("PG_BINDIR"); dir != "" {
		if !hasInitdb(dir) {
			return "", fmt.Errorf("localpg: PG_BINDIR=%s has no initdb", dir)
		}
		return dir, nil
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		if dir := strings.TrimSpace(string(out)); hasInitdb(dir) {
			return dir, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgVersionOf(dirs[i]) > pgVersionOf(dirs[j]) })
	for _, dir := range dirs {
		if hasInitdb(dir) {
			return dir, nil
		}
	}
	return "", fmt.Errorf("localpg: no PostgreSQL server binaries found (set PG_BINDIR, or install postgresql-15)")
}

func hasInitdb(dir string) bool {
	st, err := os.Stat(filepath.Join(dir, "initdb"))
	return err == nil && !st.IsDir()
}

// pgVersionOf extracts the major version from /usr/lib/postgresql/<v>/bin so
// that 15 sorts above 9.6.
func pgVersionOf(binDir string) float64 {
	v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(binDir)), 64)
	return v
}

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5"

	"github.com/pgrouter/pgrouter/config"
	"github.com/pgrouter/pgrouter/router/sharding"
	"github.com/pgrouter/pgrouter/topology/localpg"
)

const (
	benchDB = "bench"
	kvRows  = 100000
)

// kvTable is how the sharded scenario places kv rows, in pgrouter's config
// and in the loader below.
var kvTable = config.ShardedTable{Table: "kv", Column: "k", Type: "int", Function: "hash"}

func kvDBExtras() string {
	return "    sharded_tables:\n      - {table: kv, column: k, type: int, function: hash}"
}

// raiseNoFile lifts RLIMIT_NOFILE to its hard limit. pgbench -c 500 needs
// one descriptor per client, and children inherit the limit; calling
// Setrlimit ourselves also stops os/exec from restoring the old soft limit.
func raiseNoFile() error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	lim.Cur = lim.Max
	return syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
}

// ensurePgBouncer installs pgbouncer from apt when it is missing, and stops
// the system service the package may have started: we run our own.
func ensurePgBouncer(ctx context.Context) error {
	if _, err := exec.LookPath("pgbouncer"); err == nil {
		return nil
	}
	if _, err := os.Stat("/usr/sbin/pgbouncer"); err == nil {
		return nil
	}
	fmt.Fprintln(os.Stderr, "bench: installing pgbouncer with apt-get")
	cmd := exec.CommandContext(ctx, "apt-get", "install", "-y", "pgbouncer")
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("apt-get install pgbouncer: %w\n%s", err, out)
	}
	// Best effort: whichever init tool exists. Failures mean nothing runs.
	_, _ = runCmd(ctx, "systemctl", "disable", "--now", "pgbouncer")
	_, _ = runCmd(ctx, "service", "pgbouncer", "stop")
	return nil
}

// buildPgrouter builds bin/pgrouter in the repo root. When the tree does
// not build (others may be mid-change) but an earlier bin/pgrouter exists,
// that one is measured and the returned warning says so.
func buildPgrouter(ctx context.Context, root string) (bin, warning string, err error) {
	bin = filepath.Join(root, "bin", "pgrouter")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/pgrouter")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err == nil {
		return bin, "", nil
	}
	err = fmt.Errorf("go build ./cmd/pgrouter: %w\n%s", err, bytes.TrimSpace(out))
	st, statErr := os.Stat(bin)
	if statErr != nil {
		return "", "", err
	}
	return bin, fmt.Sprintf("the tree does not build, so the bin/pgrouter built earlier (%s) is measured: %v",
		st.ModTime().UTC().Format("2006-01-02 15:04 UTC"), err), nil
}

// repoRoot walks up from the working directory to the directory with go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory; run from the repo")
		}
		dir = parent
	}
}

// useMD5 switches TCP logins of n from SCRAM to md5, the method both
// proxies use towards pgbench. Otherwise the direct target pays ~500 SCRAM
// handshakes (4096 PBKDF2 rounds on each side) at c500 inside pgbench's -T
// window, which the proxies do not, and the comparison would be skewed.
func useMD5(ctx context.Context, n *localpg.Node, password string) error {
	conn, err := n.Connect(ctx, "postgres")
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	// The md5 verifier must be stored before the hba change takes effect;
	// this connection stays authenticated throughout.
	if _, err := conn.Exec(ctx, "SET password_encryption = 'md5'"); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, "ALTER ROLE postgres PASSWORD "+quoteLiteral(password)); err != nil {
		return err
	}
	hbaPath := filepath.Join(n.DataDir, "pg_hba.conf")
	hba, err := os.ReadFile(hbaPath)
	if err != nil {
		return err
	}
	// WriteFile keeps the file's owner (postgres) and mode.
	if err := os.WriteFile(hbaPath, bytes.ReplaceAll(hba, []byte("scram-sha-256"), []byte("md5")), 0o600); err != nil {
		return err
	}
	_, err = conn.Exec(ctx, "SELECT pg_reload_conf()")
	return err
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// initMain creates the bench database on the single primary with pgbench's
// tables and a kv table holding every row (the direct side of the sharded
// comparison).
func initMain(ctx context.Context, n *localpg.Node, password string, scale int) error {
	if err := n.Exec(ctx, "CREATE DATABASE "+benchDB); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "pgbench", "-i", "-q", "-s", strconv.Itoa(scale),
		"-h", n.Host, "-p", strconv.Itoa(n.Port), "-U", "postgres", benchDB)
	cmd.Env = append(os.Environ(), "PGPASSWORD="+password)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("pgbench -i: %w\n%s", err, out)
	}
	conn, err := n.Connect(ctx, benchDB)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for _, sql := range []string{
		"CREATE TABLE kv (k bigint PRIMARY KEY, v int NOT NULL)",
		fmt.Sprintf("INSERT INTO kv SELECT g, 0 FROM generate_series(1, %d) g", kvRows),
		"VACUUM ANALYZE kv", // a multi-statement string would run VACUUM in a transaction
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			return err
		}
	}
	return initXSDirect(ctx, conn)
}

// initSharded creates kv on every shard and loads each row on the shard
// router/sharding places it on, exactly as pgrouter will look for it.
func initSharded(ctx context.Context, c *localpg.Cluster) error {
	names := make([]string, len(c.Shards))
	for i, s := range c.Shards {
		names[i] = s.Name
	}
	fn, err := sharding.New(&kvTable, names)
	if err != nil {
		return err
	}
	rows := make([][][]any, len(c.Shards))
	for k := int64(1); k <= kvRows; k++ {
		i, err := fn.Shard(sharding.Key{Int: k})
		if err != nil {
			return fmt.Errorf("place k=%d: %w", k, err)
		}
		rows[i] = append(rows[i], []any{k, 0})
	}
	for i, s := range c.Shards {
		if err := loadShard(ctx, s.Primary, rows[i]); err != nil {
			return fmt.Errorf("%s: %w", s.Name, err)
		}
	}
	return nil
}

func loadShard(ctx context.Context, n *localpg.Node, rows [][]any) error {
	if err := n.Exec(ctx, "CREATE DATABASE "+benchDB); err != nil {
		return err
	}
	conn, err := n.Connect(ctx, benchDB)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "CREATE TABLE kv (k bigint PRIMARY KEY, v int NOT NULL)"); err != nil {
		return err
	}
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{"kv"}, []string{"k", "v"}, pgx.CopyFromRows(rows)); err != nil {
		return err
	}
	_, err = conn.Exec(ctx, "VACUUM ANALYZE kv")
	return err
}

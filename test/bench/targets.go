package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgrouter/pgrouter/topology/localpg"
)

// Target is something pgbench connects to.
type Target struct {
	Name           string // direct | pgbouncer | pgrouter
	Host           string
	Port           int
	User, Password string
	DB             string
	Proc           *proc  // the proxy process whose CPU we read; nil for direct
	MetricsURL     string // pgrouter's /metrics, when it serves them
}

func (t *Target) dsn() string {
	return fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable", t.User, t.Password,
		net.JoinHostPort(t.Host, strconv.Itoa(t.Port)), t.DB)
}

// directTarget is Postgres itself.
func directTarget(n *localpg.Node, db, password string) *Target {
	return &Target{Name: "direct", Host: n.Host, Port: n.Port, User: "postgres", Password: password, DB: db}
}

// waitReady polls until a simple-protocol SELECT 1 succeeds through t, or
// the process dies, or the deadline passes.
func waitReady(ctx context.Context, t *Target) error {
	deadline := time.Now().Add(15 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		if t.Proc != nil && !t.Proc.alive() {
			return fmt.Errorf("%s exited (%v):\n%s", t.Name, t.Proc.err, t.Proc.logTail(15))
		}
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		conn, err := pgconn.Connect(cctx, t.dsn())
		if err == nil {
			_, err = conn.Exec(cctx, "SELECT 1").ReadAll()
			conn.Close(cctx)
		}
		cancel()
		if err == nil {
			return nil
		}
		last = err
		if ctx.Err() != nil {
			return ctx.Err()
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready: %w", t.Name, last)
}

// freePort asks the kernel for an unused loopback port. Another process
// could take it before we bind it; on this private box that risk is accepted.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startPgBouncer runs pgbouncer in transaction pooling mode in front of pg.
func startPgBouncer(ctx context.Context, dir string, pg *localpg.Node, db, password string, pool int) (*Target, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cred, err := postgresCred()
	if err != nil {
		return nil, err
	}
	ini := fmt.Sprintf(`[databases]
%s = host=%s port=%d dbname=%s user=postgres password=%s

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = md5
auth_file = %s
pool_mode = transaction
default_pool_size = %d
max_client_conn = 12000
ignore_startup_parameters = extra_float_digits
log_connections = 0
log_disconnections = 0
`, db, pg.Host, pg.Port, db, password, port, filepath.Join(dir, "userlist.txt"), pool)
	files := map[string]string{
		"pgbouncer.ini": ini,
		"userlist.txt":  fmt.Sprintf("%q %q\n", "postgres", password),
	}
	for name, body := range files {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			return nil, err
		}
		if err := chownTo(cred, path); err != nil {
			return nil, err
		}
	}
	bin, err := exec.LookPath("pgbouncer")
	if err != nil {
		bin = "/usr/sbin/pgbouncer"
	}
	cmd := exec.CommandContext(ctx, bin, filepath.Join(dir, "pgbouncer.ini"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	p, err := startProc("pgbouncer", cmd, filepath.Join(dir, "pgbouncer.log"))
	if err != nil {
		return nil, err
	}
	t := &Target{Name: "pgbouncer", Host: "127.0.0.1", Port: port, User: "postgres", Password: password, DB: db, Proc: p}
	if err := waitReady(ctx, t); err != nil {
		p.stop()
		return nil, err
	}
	return t, nil
}

// routerSpec describes one pgrouter process.
type routerSpec struct {
	bin      string
	dir      string // for the config file and log
	name     string // target name, also the file prefix
	cluster  *localpg.Cluster
	db       string
	pool     int
	dbExtras string   // extra YAML keys of the database entry (sharded_tables …)
	env      []string // extra environment (GOMAXPROCS=1 …)
	limits   string   // raw YAML body of the limits section, if any
	metrics  bool     // serve /metrics on a free port (Target.MetricsURL)
	variant  bool     // a variant of the main pgrouter: its results carry its own name
}

// startPgrouter writes a config for spec.cluster and runs `pgrouter serve`
// as its own process, so its CPU can be read from /proc.
func startPgrouter(ctx context.Context, spec routerSpec) (*Target, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	pw := spec.cluster.Password
	sections := map[string]string{
		"pool": fmt.Sprintf("  mode: transaction\n  size: %d\n  shutdown_timeout: 2s", spec.pool),
		// The target under test saturates the host for seconds at a time; an
		// idle variant's health checks are not what is measured, and a check
		// that times out there costs a patient re-check and a warn line.
		"health": "  timeout: 5s",
		"log":    "  format: text\n  level: warn",
		"db":     spec.dbExtras,
		"limits": spec.limits,
	}
	metricsURL, metricsListen := "", ""
	if spec.metrics {
		mport, err := freePort()
		if err != nil {
			return nil, err
		}
		metricsListen = net.JoinHostPort("127.0.0.1", strconv.Itoa(mport))
		metricsURL = "http://" + metricsListen + "/metrics"
	}
	yaml := spec.cluster.ConfigYAML(localpg.ConfigOptions{
		Listen:        net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		MetricsListen: metricsListen,
		Users:         []localpg.ConfigUser{{Name: "postgres", Password: pw, Auth: "md5", ServerUser: "postgres", ServerPassword: pw}},
		Database:      spec.db,
		Sections:      sections,
	})
	cfgPath := filepath.Join(spec.dir, spec.name+".yaml")
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		return nil, err
	}
	args := []string{"--log-level", "warn", "--log-format", "text", "serve", "--config", cfgPath}
	if spec.metrics {
		args = append(args, "--pprof") // the anatomy reads the allocator's counters there
	}
	cmd := exec.CommandContext(ctx, spec.bin, args...)
	cmd.Env = append(os.Environ(), spec.env...)
	p, err := startProc(spec.name, cmd, filepath.Join(spec.dir, spec.name+".log"))
	if err != nil {
		return nil, err
	}
	t := &Target{Name: spec.target(), Host: "127.0.0.1", Port: port, User: "postgres", Password: pw, DB: spec.db,
		Proc: p, MetricsURL: metricsURL}
	if err := waitReady(ctx, t); err != nil {
		p.stop()
		return nil, err
	}
	return t, nil
}

// target is the name results of this process carry: "pgrouter" for the
// main, sharded and cross-shard processes, the process name for variants.
func (spec routerSpec) target() string {
	if spec.variant {
		return spec.name
	}
	return "pgrouter"
}

package localpg

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
)

// pgHBA trusts Unix sockets and replication from loopback (pg_basebackup
// and walreceivers need no password) and asks SCRAM for everything else.
const pgHBA = `# written by localpg
local   all          all                  trust
local   replication  all                  trust
host    replication  all   127.0.0.1/32   trust
host    all          all   127.0.0.1/32   scram-sha-256
`

// startShard brings up the primary, then clones and starts its replicas in
// parallel, and waits until each streams.
func (c *Cluster) startShard(ctx context.Context, s *Shard) error {
	began := time.Now()
	if err := c.initPrimary(ctx, s.Primary); err != nil {
		return err
	}
	if err := startOnFreePort(ctx, s.Primary); err != nil {
		return err
	}
	c.env.logf("localpg: %s up on %s after %s", s.Primary.Name, s.Primary.Addr(), time.Since(began).Round(time.Millisecond))
	g, gctx := errgroup.WithContext(ctx)
	for _, r := range s.Replicas {
		g.Go(func() error { return c.startReplica(gctx, s.Primary, r) })
	}
	return g.Wait()
}

func (c *Cluster) startReplica(ctx context.Context, primary, r *Node) error {
	began := time.Now()
	if err := c.env.runAs.mkdir(r.Dir); err != nil {
		return err
	}
	cmd := c.env.runAs.command(ctx, c.env.binDir, "pg_basebackup",
		"-D", r.DataDir, "-h", primary.Host, "-p", strconv.Itoa(primary.Port), "-U", "postgres",
		"-R", "-X", "stream", "-c", "fast", "--no-sync")
	if err := runTool(cmd); err != nil {
		return fmt.Errorf("%s: %w", r.Name, err)
	}
	if err := startOnFreePort(ctx, r); err != nil {
		return err
	}
	if err := r.waitStreaming(ctx); err != nil {
		return err
	}
	c.env.logf("localpg: %s streaming from %s on %s after %s", r.Name, primary.Name, r.Addr(), time.Since(began).Round(time.Millisecond))
	return nil
}

// initPrimary runs initdb and writes postgresql.conf and pg_hba.conf.
func (c *Cluster) initPrimary(ctx context.Context, n *Node) error {
	ra := c.env.runAs
	if err := ra.mkdir(n.Dir); err != nil {
		return err
	}
	if _, err := os.Stat(n.DataDir); err == nil {
		return fmt.Errorf("localpg: %s already exists; use an empty Dir", n.DataDir)
	}
	pwfile := filepath.Join(n.Dir, "pwfile")
	if err := ra.writeFile(pwfile, []byte(n.password+"\n")); err != nil {
		return err
	}
	defer os.Remove(pwfile)
	cmd := ra.command(ctx, c.env.binDir, "initdb",
		"-D", n.DataDir, "-U", "postgres", "--pwfile="+pwfile, "-A", "trust",
		"-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
	if err := runTool(cmd); err != nil {
		return fmt.Errorf("%s: %w", n.Name, err)
	}
	if err := appendFile(filepath.Join(n.DataDir, "postgresql.conf"), confLines(c.env.settings)); err != nil {
		return err
	}
	return ra.writeFile(filepath.Join(n.DataDir, "pg_hba.conf"), []byte(pgHBA))
}

// confLines renders settings as postgresql.conf lines; appended at the end
// of the file they override initdb's values.
func confLines(settings map[string]string) string {
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("\n# --- localpg settings ---\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "%s = '%s'\n", k, strings.ReplaceAll(settings[k], "'", "''"))
	}
	return b.String()
}

func appendFile(path, text string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("localpg: %w", err)
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return fmt.Errorf("localpg: %w", err)
	}
	return f.Close()
}

// startOnFreePort picks a free loopback port and starts n on it, picking
// again if another process grabbed the port in between.
func startOnFreePort(ctx context.Context, n *Node) error {
	var err error
	for range 5 {
		if n.Port, err = freePort(); err != nil {
			return err
		}
		if err = n.startServer(ctx); !errors.Is(err, errPortInUse) {
			return err
		}
		n.env.logf("localpg: %s: port %d taken, retrying", n.Name, n.Port)
	}
	return err
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("localpg: finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitStreaming waits until the replica's walreceiver is streaming.
func (n *Node) waitStreaming(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	err := poll(ctx, 20*time.Millisecond, func() (bool, error) {
		var streaming bool
		err := n.QueryRow(ctx, "SELECT count(*) > 0 FROM pg_stat_wal_receiver WHERE status = 'streaming'").Scan(&streaming)
		return streaming, err
	})
	if err != nil {
		return fmt.Errorf("localpg: %s never started streaming: %w; log %s:\n%s", n.Name, err, n.LogFile, fileTail(n.LogFile, 20))
	}
	return nil
}

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
	reused, err := c.initPrimary(ctx, s.Primary)
	if err != nil {
		return err
	}
	if err := startOnFreePort(ctx, s.Primary); err != nil {
		return err
	}
	if reused {
		// The earlier run may have used another password.
		if err := s.Primary.execLocal(ctx, "ALTER ROLE postgres PASSWORD "+quoteLiteral(s.Primary.password)); err != nil {
			return err
		}
	}
	c.env.logf("localpg: %s up on %s after %s (reused data: %v)", s.Primary.Name, s.Primary.Addr(), time.Since(began).Round(time.Millisecond), reused)
	g, gctx := errgroup.WithContext(ctx)
	for _, r := range s.Replicas {
		g.Go(func() error { return c.startReplica(gctx, r) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if reused {
		// Replicas must have replayed the password change before callers
		// log in to them with it.
		return s.WaitReplicated(ctx)
	}
	return nil
}

func (c *Cluster) startReplica(ctx context.Context, r *Node) error {
	began := time.Now()
	if err := c.env.runAs.mkdir(r.Dir); err != nil {
		return err
	}
	primary := r.upstream
	reused := hasData(r.DataDir)
	if !reused {
		cmd := c.env.runAs.command(ctx, c.env.binDir, "pg_basebackup",
			"-D", r.DataDir, "-h", primary.Host, "-p", strconv.Itoa(primary.Port), "-U", "postgres",
			"-R", "-X", "stream", "-c", "fast", "--no-sync")
		if err := runTool(cmd); err != nil {
			return fmt.Errorf("%s: %w", r.Name, err)
		}
	}
	if err := c.writeConfig(r); err != nil {
		return err
	}
	if err := startOnFreePort(ctx, r); err != nil {
		return err
	}
	if err := r.waitStreaming(ctx); err != nil {
		return err
	}
	c.env.logf("localpg: %s streaming from %s on %s after %s (reused data: %v)", r.Name, primary.Name, r.Addr(), time.Since(began).Round(time.Millisecond), reused)
	return nil
}

// initPrimary runs initdb unless the data directory is already there from
// an earlier run with the same Dir, and (re)writes the configuration.
func (c *Cluster) initPrimary(ctx context.Context, n *Node) (reused bool, err error) {
	ra := c.env.runAs
	if err := ra.mkdir(n.Dir); err != nil {
		return false, err
	}
	if hasData(n.DataDir) {
		return true, c.writeConfig(n)
	}
	pwfile := filepath.Join(n.Dir, "pwfile")
	if err := ra.writeFile(pwfile, []byte(n.password+"\n")); err != nil {
		return false, err
	}
	defer os.Remove(pwfile)
	cmd := ra.command(ctx, c.env.binDir, "initdb",
		"-D", n.DataDir, "-U", "postgres", "--pwfile="+pwfile, "-A", "trust",
		"-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
	if err := runTool(cmd); err != nil {
		return false, fmt.Errorf("%s: %w", n.Name, err)
	}
	include := "\n# Settings managed by localpg (rewritten on every start):\ninclude 'localpg.conf'\n"
	if err := appendFile(filepath.Join(n.DataDir, "postgresql.conf"), include); err != nil {
		return false, err
	}
	return false, c.writeConfig(n)
}

// hasData reports whether dir holds an initialised data directory.
func hasData(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "PG_VERSION"))
	return err == nil
}

// writeConfig writes localpg.conf (included at the end of postgresql.conf,
// so it overrides initdb's values) and pg_hba.conf. Replicas get both from
// pg_basebackup; they are rewritten anyway so a reused Dir picks up the
// current Options.
func (c *Cluster) writeConfig(n *Node) error {
	ra := c.env.runAs
	if err := ra.writeFile(filepath.Join(n.DataDir, "localpg.conf"), []byte(confLines(c.env.settings))); err != nil {
		return err
	}
	return ra.writeFile(filepath.Join(n.DataDir, "pg_hba.conf"), []byte(pgHBA))
}

// confLines renders settings as postgresql.conf lines.
func confLines(settings map[string]string) string {
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("# written by localpg from Options.Settings over DefaultSettings()\n")
	for _, k := range keys {
		// postgresql.conf strings treat backslash as an escape, SQL's do not.
		fmt.Fprintf(&b, "%s = %s\n", k, quoteLiteral(strings.ReplaceAll(settings[k], `\`, `\\`)))
	}
	return b.String()
}

// quoteLiteral quotes s for postgresql.conf and SQL (standard strings).
func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
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
		err := n.queryRowLocal(ctx, "SELECT count(*) > 0 FROM pg_stat_wal_receiver WHERE status = 'streaming'").Scan(&streaming)
		return streaming, err
	})
	if err != nil {
		return fmt.Errorf("localpg: %s never started streaming: %w; log %s:\n%s", n.Name, err, n.LogFile, fileTail(n.LogFile, 20))
	}
	return nil
}

package localpg

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// Cluster is a set of running shards. Close it when done.
type Cluster struct {
	Dir      string
	User     string // superuser, always "postgres"
	Password string
	Shards   []*Shard

	env         *clusterEnv
	tempDir     bool
	cancelSetup context.CancelFunc
	stopSignals func()
	closeOnce   sync.Once
	closeErr    error
}

// Shard is one primary with its replicas.
type Shard struct {
	Name     string // "shard0", "shard1", …
	Primary  *Node
	Replicas []*Node
}

// clusterEnv is what every node of a cluster shares.
type clusterEnv struct {
	binDir   string
	runAs    runAs
	spawner  *spawner
	settings map[string]string
	logf     func(format string, args ...any)
}

// Start creates and starts a cluster as described by o: shards in parallel,
// each an initdb'd primary followed by replicas cloned with pg_basebackup,
// and returns once every replica is streaming. On error nothing is left
// running. See the package doc for signal handling and cleanup guarantees.
func Start(ctx context.Context, o Options) (*Cluster, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	ra, err := lookupRunAs()
	if err != nil {
		return nil, err
	}
	began := time.Now()
	c := &Cluster{User: "postgres", Password: o.Password, env: &clusterEnv{
		binDir: o.BinDir, runAs: ra, settings: o.Settings, logf: o.Logf,
	}}
	if err := c.makeDir(o.Dir); err != nil {
		return nil, err
	}
	c.env.spawner = newSpawner()
	setupCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	c.cancelSetup = cancel
	if !o.NoSignalHandler {
		c.stopSignals = handleSignals(c)
	}
	c.buildNodes(o)
	g, gctx := errgroup.WithContext(setupCtx)
	for _, s := range c.Shards {
		g.Go(func() error { return c.startShard(gctx, s) })
	}
	if err := g.Wait(); err != nil {
		_ = c.Close()
		return nil, err
	}
	o.Logf("localpg: %d shard(s) × (1+%d) up in %s, dir %s", o.Shards, o.Replicas, time.Since(began).Round(time.Millisecond), c.Dir)
	return c, nil
}

// makeDir creates the cluster directory and hands it to the server user.
func (c *Cluster) makeDir(dir string) error {
	if dir == "" {
		removeStaleTempDirs(c.env.logf, staleAfter)
		d, err := os.MkdirTemp("", tempDirPrefix)
		if err != nil {
			return fmt.Errorf("localpg: %w", err)
		}
		c.tempDir = true
		if err := os.WriteFile(filepath.Join(d, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
			return fmt.Errorf("localpg: %w", err)
		}
		dir = d
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("localpg: %w", err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("localpg: %w", err)
	}
	c.Dir = abs
	if err := c.env.runAs.checkReachable(abs); err != nil {
		return err
	}
	return c.env.runAs.own(abs)
}

func (c *Cluster) buildNodes(o Options) {
	node := func(shard int, name string, replica bool) *Node {
		dir := filepath.Join(c.Dir, name)
		return &Node{
			Name: name, Shard: shard, Replica: replica, Host: "127.0.0.1",
			Dir: dir, DataDir: filepath.Join(dir, "data"), LogFile: filepath.Join(dir, "postgres.log"),
			user: c.User, password: c.Password, env: c.env,
		}
	}
	for i := range o.Shards {
		s := &Shard{Name: fmt.Sprintf("shard%d", i)}
		s.Primary = node(i, s.Name+"-primary", false)
		for j := 1; j <= o.Replicas; j++ {
			r := node(i, fmt.Sprintf("%s-replica%d", s.Name, j), true)
			r.upstream = s.Primary
			s.Replicas = append(s.Replicas, r)
		}
		c.Shards = append(c.Shards, s)
	}
}

// Nodes lists every node: each shard's primary followed by its replicas.
func (c *Cluster) Nodes() []*Node {
	var nodes []*Node
	for _, s := range c.Shards {
		nodes = append(nodes, s.Primary)
		nodes = append(nodes, s.Replicas...)
	}
	return nodes
}

// Close stops every server (fast shutdown, escalating to immediate and then
// SIGKILL) and removes the directory if Start created it. It is idempotent
// and safe to call from several goroutines.
func (c *Cluster) Close() error {
	c.closeOnce.Do(func() { c.closeErr = c.close() })
	return c.closeErr
}

func (c *Cluster) close() error {
	c.cancelSetup()
	if c.stopSignals != nil {
		c.stopSignals()
	}
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for _, n := range c.Nodes() {
		wg.Go(func() {
			if err := n.shutdown(); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	c.env.spawner.stop() // last resort for anything still running: Pdeathsig
	if c.tempDir {
		if err := os.RemoveAll(c.Dir); err != nil {
			errs = append(errs, fmt.Errorf("localpg: %w", err))
		}
	}
	return errors.Join(errs...)
}

// WaitReplicated waits until every running replica has replayed its
// primary's WAL up to the primary's current LSN (sampled on entry). A
// replica whose replay is paused blocks it until ctx ends.
func (c *Cluster) WaitReplicated(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	for _, s := range c.Shards {
		g.Go(func() error { return s.WaitReplicated(gctx) })
	}
	return g.Wait()
}

// WaitReplicated is Cluster.WaitReplicated for one shard.
func (s *Shard) WaitReplicated(ctx context.Context) error {
	lsn, err := s.Primary.walTarget(ctx)
	if err != nil {
		return err
	}
	for _, r := range s.Replicas {
		err := poll(ctx, 10*time.Millisecond, func() (bool, error) {
			var caughtUp bool
			err := r.queryRowLocal(ctx, "SELECT coalesce(pg_last_wal_replay_lsn() >= $1::pg_lsn, false)", lsn).Scan(&caughtUp)
			return caughtUp, err
		})
		if err != nil {
			return fmt.Errorf("localpg: waiting for %s to replay %s: %w", r.Name, lsn, err)
		}
	}
	return nil
}

// walTarget is the LSN a replica must replay to have everything the
// primary holds now. The *insert* position is used because with
// synchronous_commit = off the write position (pg_current_wal_lsn) can
// still be short of a commit that has already returned. An insert position
// just past a page header is moved back to the page start: the last record
// ended there, and replay LSNs never point into a header.
func (n *Node) walTarget(ctx context.Context) (string, error) {
	var lsn string
	err := n.queryRowLocal(ctx, `SELECT (CASE WHEN (l - '0/0'::pg_lsn) % 8192 <= 40
		THEN l - (l - '0/0'::pg_lsn) % 8192 ELSE l END)::text
		FROM pg_current_wal_insert_lsn() AS l`).Scan(&lsn)
	return lsn, err
}

package proxy

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/pgrouter/pgrouter/pgwire"

	"github.com/pgrouter/pgrouter/config"
	"github.com/pgrouter/pgrouter/proxy/twophase"
	"github.com/pgrouter/pgrouter/topology"
)

// recoveryInterval is how often in-doubt transactions are retried.
const recoveryInterval = 5 * time.Second

// startTwoPhase opens the decision log and starts recovery when a
// database uses two-phase commit.
func (s *Server) startTwoPhase(ctx context.Context, cfg *config.Config, shared func(instance string) (twophase.Shared, error)) error {
	on := false
	for _, db := range cfg.Databases {
		on = on || db.TwoPhaseCommit
	}
	if !on {
		return nil
	}
	c, err := newCoordinator(s, cfg.DataDir)
	if err != nil {
		return fmt.Errorf("two_phase_commit: %w", err)
	}
	if shared != nil {
		if c.shared, err = shared(c.log.Instance()); err != nil {
			return fmt.Errorf("two_phase_commit in a fleet: %w", err)
		}
	}
	s.coord = c
	go c.run(ctx)
	return nil
}

// run finishes in-doubt transactions at start (a crash may have left some
// between the phases) and then periodically (a shard may have been
// unreachable when its COMMIT PREPARED was due).
func (c *coordinator) run(ctx context.Context) {
	t := time.NewTicker(recoveryInterval)
	defer t.Stop()
	c.checkShards()
	for {
		c.recover()
		if err := c.log.Compact(); err != nil {
			c.srv.log.Warn("two-phase commit log compaction failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// recover commits every decided transaction on the shards that still hold
// it prepared, and rolls back this instance's prepared transactions that
// were never decided (presumed abort). It returns how many transactions it
// finished itself, and logs only what it did: a transaction that its own
// session finished between the listing and now (a live commit) was
// neither committed nor rolled back by recovery.
func (c *coordinator) recover() int {
	cfg := c.srv.state.Load().cfg
	snap := c.srv.topo.Snapshot()
	n := 0
	for _, d := range c.log.Pending() {
		if c.isInflight(d.GID) {
			continue
		}
		acted, err := c.resolve(cfg, snap, d.GID, d.Shards, true)
		if err != nil {
			c.srv.log.Warn("in-doubt transaction not committed yet; will retry", "gid", d.GID, "err", err)
			continue
		}
		c.log.Done(d.GID)
		c.forget(d.GID)
		if len(acted) == 0 {
			c.srv.log.Debug("decided transaction was already committed on every shard", "gid", d.GID)
			continue
		}
		c.srv.log.Info("in-doubt transaction committed by recovery", "gid", d.GID, "shard", strings.Join(acted, ","))
		n++
	}
	for _, p := range c.orphans(cfg, snap) {
		if c.isInflight(p.gid) {
			continue
		}
		if _, decided := c.log.Decided(p.gid); decided {
			continue
		}
		if c.shared != nil { // the decision may be in etcd only (crash right after recording it)
			n += c.resolveShared(cfg, snap, p, true)
			continue
		}
		acted, err := c.resolve(cfg, snap, p.gid, []string{p.shard}, false)
		if err != nil {
			c.srv.log.Warn("undecided prepared transaction not rolled back yet; will retry", "gid", p.gid, "shard", p.shard, "err", err)
			continue
		}
		if len(acted) == 0 {
			c.srv.log.Debug("prepared transaction was finished by its session meanwhile", "gid", p.gid, "shard", p.shard)
			continue
		}
		c.srv.log.Info("undecided prepared transaction rolled back by recovery", "gid", p.gid, "shard", p.shard)
		n++
	}
	if c.shared != nil {
		n += c.recoverOthers(cfg, snap)
	}
	return n
}

// checkShards warns at start about shards that cannot prepare
// transactions: every multi-shard commit would then fail there.
func (c *coordinator) checkShards() {
	cfg := c.srv.state.Load().cfg
	snap := c.srv.topo.Snapshot()
	for _, sh := range cfg.Shards {
		err := c.onPrimary(cfg, snap, preparedXact{shard: sh.Name}, func(b *binding) error {
			r := execOne(b, "SHOW max_prepared_transactions")
			if r.err == nil && len(r.rows) == 1 && len(r.rows[0]) == 1 && r.rows[0][0] == "0" {
				c.srv.log.Error("two_phase_commit is on but the shard cannot prepare transactions: multi-shard commits will fail",
					"shard", sh.Name, "max_prepared_transactions", 0)
			}
			return nil
		})
		if err != nil {
			c.srv.log.Warn("cannot check max_prepared_transactions", "shard", sh.Name, "err", err)
		}
	}
}

func (c *coordinator) isInflight(gid string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.inflight[gid]
}

// resolve runs COMMIT PREPARED (or ROLLBACK PREPARED) for gid on the
// primaries of shards and returns the shards where it did so; a shard that
// no longer has gid prepared (its session or another recovery pass finished
// it) is not among them.
func (c *coordinator) resolve(cfg *config.Config, snap *topology.Snapshot, gid string, shards []string, commit bool) (acted []string, err error) {
	verb := "ROLLBACK PREPARED "
	if commit {
		verb = "COMMIT PREPARED "
	}
	for _, name := range shards {
		p, ok := c.findPrepared(cfg, snap, name, gid)
		if !ok.found {
			if ok.err != nil {
				return acted, ok.err
			}
			continue // not prepared there (any more)
		}
		done := false
		if err := c.onPrimary(cfg, snap, p, func(b *binding) error {
			r := execOne(b, verb+quoteLiteral(gid))
			if r.err != nil && r.err.Code != pgwire.UndefinedObject { // 42704: finished since the lookup
				return fmt.Errorf("shard %s: %s", name, r.err.Message)
			}
			done = r.err == nil
			return nil
		}); err != nil {
			return acted, err
		}
		if done {
			acted = append(acted, name)
		}
	}
	return acted, nil
}

// preparedXact is a prepared transaction of this instance on one shard.
type preparedXact struct {
	gid, shard, owner, dbname string
	preparedAt                string
}

type lookup struct {
	found bool
	err   error
}

// findPrepared looks gid up on a shard's primary.
func (c *coordinator) findPrepared(cfg *config.Config, snap *topology.Snapshot, shard, gid string) (preparedXact, lookup) {
	inst := twophase.InstanceOf(gid) // recovery in a fleet finishes other members' too
	xs, err := c.listPreparedOf(cfg, snap, shard, inst+"_", func(g string) bool { return g == gid })
	if err != nil {
		return preparedXact{}, lookup{err: err}
	}
	for _, x := range xs {
		if x.gid == gid {
			return x, lookup{found: true}
		}
	}
	return preparedXact{}, lookup{}
}

// orphans lists this instance's prepared transactions on every shard.
func (c *coordinator) orphans(cfg *config.Config, snap *topology.Snapshot) []preparedXact {
	var all []preparedXact
	for _, sh := range cfg.Shards {
		xs, err := c.listPrepared(cfg, snap, sh.Name)
		if err != nil {
			c.srv.log.Warn("cannot list prepared transactions", "shard", sh.Name, "err", err)
			continue
		}
		all = append(all, xs...)
	}
	return all
}

// listPrepared reads pg_prepared_xacts (all databases) on a shard's primary.
func (c *coordinator) listPrepared(cfg *config.Config, snap *topology.Snapshot, shard string) ([]preparedXact, error) {
	return c.listPreparedOf(cfg, snap, shard, c.log.Instance()+"_", c.log.Owns)
}

// listPreparedOf lists the prepared transactions on a shard whose gid
// starts with GIDPrefix+prefix and passes keep.
func (c *coordinator) listPreparedOf(cfg *config.Config, snap *topology.Snapshot, shard, prefix string, keep func(gid string) bool) ([]preparedXact, error) {
	var out []preparedXact
	probe := preparedXact{shard: shard}
	err := c.onPrimary(cfg, snap, probe, func(b *binding) error {
		pattern := strings.ReplaceAll(twophase.GIDPrefix+prefix, "_", `\_`) + "%"
		r := execOne(b, "SELECT gid, owner, database, prepared::text FROM pg_catalog.pg_prepared_xacts WHERE gid LIKE "+quoteLiteral(pattern)+" ORDER BY prepared")
		if r.err != nil {
			return fmt.Errorf("shard %s: %s", shard, r.err.Message)
		}
		for _, row := range r.rows {
			if len(row) == 4 && keep(row[0]) {
				out = append(out, preparedXact{gid: row[0], shard: shard, owner: row[1], dbname: row[2], preparedAt: row[3]})
			}
		}
		return nil
	})
	return out, err
}

// onPrimary runs f on a backend of the shard's primary, connected as the
// user that owns x in x's database (any 2PC database and user when x
// does not say), returning the backend to its pool afterwards.
func (c *coordinator) onPrimary(cfg *config.Config, snap *topology.Snapshot, x preparedXact, f func(*binding) error) error {
	idx := -1
	for i, sh := range cfg.Shards {
		if sh.Name == x.shard {
			idx = i
		}
	}
	if idx < 0 {
		return fmt.Errorf("shard %s is not in the configuration", x.shard)
	}
	node, err := snap.Primary(idx)
	if err != nil {
		return err
	}
	u, db := pickLogin(cfg, x.owner, x.dbname)
	if u == nil {
		return fmt.Errorf("no configured user can log in as %q to database %q", x.owner, x.dbname)
	}
	p := node.Pool(u, db)
	if p == nil {
		return fmt.Errorf("node %s was removed", node.Name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := p.Acquire(ctx)
	if err != nil {
		return err
	}
	rd := newFrameReader(conn.NetConn, 4<<10)
	b := &binding{conn: conn, pool: p, node: node, shard: idx, primary: true, rd: rd, txStatus: pgwire.TxIdle}
	err = f(b)
	if b.txStatus == pgwire.TxIdle {
		p.Release(conn)
	} else {
		p.Discard(conn)
	}
	return err
}

// pickLogin finds the config user and database for a prepared
// transaction's owner (server role) and database name. Empty ones match
// the first database with two-phase commit and the first non-admin user.
func pickLogin(cfg *config.Config, owner, dbname string) (*config.User, *config.Database) {
	var db *config.Database
	for i := range cfg.Databases {
		if d := &cfg.Databases[i]; d.TwoPhaseCommit && (dbname == "" || d.Dbname == dbname) {
			db = d
			break
		}
	}
	if db == nil {
		return nil, nil
	}
	for i := range cfg.Users {
		u := &cfg.Users[i]
		server := u.ServerUser
		if server == "" {
			server = u.Name
		}
		if owner == server || (owner == "" && !u.Admin) {
			return u, db
		}
	}
	return nil, nil
}

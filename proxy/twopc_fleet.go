package proxy

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/pgrouter/pgrouter/pgwire"

	"github.com/pgrouter/pgrouter/config"
	"github.com/pgrouter/pgrouter/proxy/twophase"
	"github.com/pgrouter/pgrouter/topology"
)

// Two-phase commit in a fleet (docs/ARCHITECTURE.md, "A fleet of
// pgrouters"): the decision to commit is recorded in the shared store
// before the local log, so a survivor can finish what a dead member left
// prepared; recovery records an abort the same way before rolling back.

// sharedTimeout bounds one request to the shared decision store.
const sharedTimeout = 5 * time.Second

// decideShared records the commit decision in the fleet's store. decided
// is true when the commit must not go on: out says what the client gets.
func (c *coordinator) decideShared(d twophase.Decision, members []*binding, prepared []bool) (out commitOutcome, decided bool) {
	if c.shared == nil {
		return commitOutcome{}, false
	}
	if !c.shared.Ready() {
		c.rollbackPrepared(members, prepared, d.GID)
		c.aborts.Inc()
		return commitOutcome{tag: "ROLLBACK", err: pgwire.Error("40000",
			"multi-shard transaction rolled back on every shard: etcd is unreachable, so its commit cannot be recorded for the fleet",
			"retry when etcd answers; single-shard transactions are not affected")}, true
	}
	ctx, cancel := context.WithTimeout(context.Background(), sharedTimeout)
	defer cancel()
	ok, err := c.shared.Commit(ctx, d)
	if err != nil {
		// The record may or may not have been written: leave every shard
		// prepared; recovery reads the store and finishes it one way everywhere.
		c.srv.log.Error("two-phase commit decision not confirmed by etcd; recovery will finish the transaction", "gid", d.GID, "err", err)
		return commitOutcome{tag: "ROLLBACK", err: pgwire.Error("08007",
			"the outcome of the multi-shard transaction is unknown: etcd did not confirm its commit decision ("+err.Error()+")",
			"recovery commits or rolls it back on every shard alike; check whether its writes are there before retrying")}, true
	}
	if !ok {
		c.rollbackPrepared(members, prepared, d.GID)
		c.aborts.Inc()
		return commitOutcome{tag: "ROLLBACK", err: pgwire.Error("40000",
			"multi-shard transaction rolled back on every shard: another pgrouter recovered it as abandoned",
			"this pgrouter had lost its fleet membership (etcd lease); retry the transaction")}, true
	}
	return commitOutcome{}, false
}

// forget drops gid's decision from the shared store once every shard
// committed it.
func (c *coordinator) forget(gid string) {
	if c.shared == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), sharedTimeout)
	defer cancel()
	c.shared.Forget(ctx, gid)
}

// recoverOthers finishes prepared transactions of fleet members whose lease
// expired: commit where a commit decision exists, else roll back (an abort
// recorded first makes a late commit by that member impossible).
func (c *coordinator) recoverOthers(cfg *config.Config, snap *topology.Snapshot) int {
	mine := c.log.Instance()
	other := func(gid string) bool {
		inst := twophase.InstanceOf(gid)
		return inst != "" && inst != mine
	}
	n := 0
	for _, sh := range cfg.Shards {
		xs, err := c.listPreparedOf(cfg, snap, sh.Name, "", other)
		if err != nil {
			c.srv.log.Warn("cannot list prepared transactions", "shard", sh.Name, "err", err)
			continue
		}
		for _, x := range xs {
			n += c.resolveShared(cfg, snap, x, false)
		}
	}
	return n
}

// resolveShared asks the shared store what to do with x and does it; it
// returns 1 when it finished x.
func (c *coordinator) resolveShared(cfg *config.Config, snap *topology.Snapshot, x preparedXact, own bool) int {
	ctx, cancel := context.WithTimeout(context.Background(), sharedTimeout)
	defer cancel()
	outcome, shards, err := c.shared.Resolve(ctx, x.gid, twophase.InstanceOf(x.gid), own)
	if err != nil {
		c.srv.log.Warn("in-doubt transaction left for later: etcd did not answer", "gid", x.gid, "shard", x.shard, "err", err)
		return 0
	}
	switch outcome {
	case twophase.Commit:
		if !slices.Contains(shards, x.shard) {
			shards = append(shards, x.shard)
		}
		acted, err := c.resolve(cfg, snap, x.gid, shards, true)
		if err != nil {
			c.srv.log.Warn("in-doubt transaction not committed yet; will retry", "gid", x.gid, "err", err)
			return 0
		}
		c.shared.Forget(ctx, x.gid)
		c.srv.log.Info("in-doubt transaction committed by fleet recovery", "gid", x.gid, "shard", strings.Join(acted, ","))
		return 1
	case twophase.Abort:
		acted, err := c.resolve(cfg, snap, x.gid, []string{x.shard}, false)
		if err != nil || len(acted) == 0 {
			return 0
		}
		c.srv.log.Info("undecided prepared transaction rolled back by fleet recovery", "gid", x.gid, "shard", x.shard, "own", own)
		return 1
	}
	return 0
}

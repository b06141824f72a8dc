package proxy

import (
	"fmt"
	"strings"
	"time"

	"github.com/pgrouter/pgrouter/pgwire"
)

// showTransactions lists two-phase commits not finished everywhere:
// decided ones (commit pending on some shard) and this instance's prepared
// transactions that no decision covers (they will be rolled back).
func (ss *session) showTransactions() error {
	c := ss.srv.coord
	if c == nil {
		return pgwire.Error(pgwire.ObjectNotInPrerequisiteState, "two-phase commit is not enabled", "set two_phase_commit: true for a database")
	}
	var rows [][]string
	for _, d := range c.log.Pending() {
		rows = append(rows, []string{d.GID, "commit", d.Database, strings.Join(d.Shards, ","),
			d.DecidedAt.UTC().Format(time.RFC3339), fmt.Sprintf("%.1f", time.Since(d.DecidedAt).Seconds())})
	}
	cfg := ss.srv.Config()
	for _, p := range c.orphans(cfg, ss.srv.Topology().Snapshot()) {
		if _, decided := c.log.Decided(p.gid); decided {
			continue
		}
		state := "undecided"
		if c.isInflight(p.gid) {
			state = "committing"
		}
		rows = append(rows, []string{p.gid, state, p.dbname, p.shard, p.preparedAt, ""})
	}
	ss.adminTable([]string{"gid", "decision", "database", "shards", "since", "age_seconds"}, rows)
	return nil
}

// adminRecover runs a recovery pass now instead of waiting for the next one.
func (ss *session) adminRecover() error {
	c := ss.srv.coord
	if c == nil {
		return pgwire.Error(pgwire.ObjectNotInPrerequisiteState, "two-phase commit is not enabled", "set two_phase_commit: true for a database")
	}
	n := c.recover()
	if left := len(c.log.Pending()); left > 0 {
		ss.adminNotice(fmt.Sprintf("%d decided transaction(s) still wait for a shard; see SHOW TRANSACTIONS", left))
	}
	ss.adminTag(fmt.Sprintf("RECOVER %d", n))
	return nil
}

package proxy

import "github.com/pgrouter/pgrouter/pgwire"

// A simple Query replaces the unnamed portal: Postgres runs each of its
// statements in a portal named "" (exec_simple_query's CreatePortal drops
// the one there) and drops that portal when the statement completes. A
// statement that fails before its portal exists (a syntax error anywhere
// in the text, which is parsed whole first; analysis; planning: 1/0 of
// constants folded) leaves the old one in place, and after an error
// nothing more of the text runs. So a Query keeps the unnamed portal
// exactly when it failed in its first statement, before that statement's
// portal: no statement completed, and the backend holds no unnamed portal
// of the Query's (a statement that failed while running leaves its failed
// portal: Describe answers 25P02).
//
// The proxy's own unnamed portal (an extended BEGIN's, answered locally;
// a suspended multi-shard portal) is not on the backend: simpleQuery sets
// it aside when the Query starts and gives it back here. Of an implicit
// transaction it ends with the Query anyway (endImplicitPortals). A first
// statement run by the multi-shard executors (scatter read, split or
// broadcast write) drops it whatever happened: several shards answer, in
// the extended protocol, and a write shows nothing before it completes,
// so where it failed is not known.

// keepUnnamedIfNotReplaced gives p back as the unnamed portal after a
// Query ran on b that failed in its transaction with no statement
// completed (completed: one did, so it replaced p). Whether the failing
// statement made a portal is asked of b (Describe of the unnamed portal:
// 34000 if none).
func (ss *session) keepUnnamedIfNotReplaced(p *keptPortal, b *binding, completed bool) error {
	if p == nil || completed || b == nil || b.txStatus != pgwire.TxFailed || ss.kept[""] != nil || ss.keptToSync {
		return nil // (keptToSync: p ends with the Query's implicit transaction)
	}
	out := append(ss.bout[:0], pgwire.Describe, 0, 0, 0, 6, pgwire.ObjectPortal, 0)
	out = append(out, pgwire.Sync, 0, 0, 0, 4)
	ss.bout = out[:0]
	if err := b.sendAwait(out); err != nil {
		return ss.backendLost(err)
	}
	perr, lost := b.readUntilReady(nil)
	if lost != nil {
		return ss.backendLost(lost)
	}
	if perr != nil && perr.Code == pgwire.InvalidCursorName {
		ss.keep("", p)
	}
	return nil
}

// keepUnnamedAfterRefusal gives p back after the proxy refused a Query
// whose text the parser rejects (router.Plan.Unparsed): Postgres parses a
// whole text before running any of it, so nothing replaced the portal.
// Other refusals drop it: Postgres would have run the statement.
func (ss *session) keepUnnamedAfterRefusal(p *keptPortal, unparsed bool) {
	if p != nil && unparsed && ss.txStatus == pgwire.TxFailed && ss.kept[""] == nil {
		ss.keep("", p)
	}
}

package proxy

import "github.com/pgrouter/pgrouter/router"

// txState is the client's transaction as pgrouter runs it: which backend(s)
// it holds, what opened it (replayed on every shard it moves to or joins),
// what it did that pins it, and what the client last saw of it. Outside a
// transaction it is empty (be nil, txStatus TxIdle) unless the session is
// pinned. The multi-shard transaction (multitx*.go), its savepoints
// (multitx_savepoint.go), a failed deferred transaction (txfailed.go) and
// two-phase commit (twopc.go) all work on it.
type txState struct {
	be              *binding        // backend in use, nil between transactions
	members         []*binding      // every backend of a transaction that spans shards (be among them); nil otherwise
	txBegin         string          // the BEGIN that opened the transaction, replayed on shards it moves to
	txSavepoint     bool            // the transaction used savepoints pgrouter cannot replay: it may not move to another shard
	savepoints      []string        // the transaction's savepoints, oldest first: replayed on shards it moves to
	txSetLocal      bool            // the transaction ran SET LOCAL / SET TRANSACTION: it may not move either
	txFailed        bool            // a deferred transaction (pendingBegin) failed before reaching a backend
	pendingBegin    string          // BEGIN answered locally, sent with the first real statement
	pendingReadOnly bool            // the deferred BEGIN was READ ONLY: a replica may serve it
	txStatus        byte            // what the client last saw in ReadyForQuery
	txSets          []router.SetVar // SETs inside the open transaction, applied on COMMIT

	// Suspended multi-shard portals of the open transaction (scatter_portal.go);
	// keptToSync: of an implicit one, closed at the client's Sync or Query.
	kept       map[string]*keptPortal
	keptToSync bool
}

// ended forgets what lived only as long as the transaction (its SETs are
// the session's to apply or drop: see readyForQuery).
func (t *txState) ended() {
	t.txBegin, t.txSavepoint, t.txSetLocal, t.savepoints = "", false, false, t.savepoints[:0]
	t.kept, t.keptToSync = nil, false // portals end with the transaction
}

// member is the transaction's backend on shard (nil: not joined yet).
func (t *txState) member(shard int) *binding {
	for _, m := range t.members {
		if m.shard == shard {
			return m
		}
	}
	return nil
}

// dropMember removes b from a multi-shard transaction's backends.
func (t *txState) dropMember(b *binding) {
	for i, m := range t.members {
		if m == b {
			t.members = append(t.members[:i], t.members[i+1:]...)
			return
		}
	}
}

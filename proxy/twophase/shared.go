package twophase

import "context"

// Outcome is what recovery may do with a prepared transaction.
type Outcome int

const (
	// Undecided: leave it; its owner is alive (its session may still
	// commit it) or it is not a fleet member's.
	Undecided Outcome = iota
	// Commit: a commit decision exists; commit it on every shard.
	Commit
	// Abort: no commit decision exists and none can be made any more.
	Abort
)

// Shared keeps decisions where every member of a fleet of pgrouters can read
// them (package fleet: etcd), so that a survivor finishes the transactions
// a dead member left prepared. Exactly one of "commit" (by the owner, before
// any COMMIT PREPARED) and "abort" (by recovery) is ever recorded for a gid:
// both are compare-and-swap on the absence of a decision.
type Shared interface {
	// Ready reports whether the store answers now; a commit is refused
	// (rolled back) before anything is recorded when it does not.
	Ready() bool
	// Commit records the decision to commit d. ok is false when recovery
	// recorded an abort first (the caller rolls back); an error means the
	// outcome is unknown (the caller leaves the transaction prepared, for
	// recovery to finish either way).
	Commit(ctx context.Context, d Decision) (ok bool, err error)
	// Resolve decides gid, prepared by instance owner, for recovery: if own
	// (this instance's transaction, not in flight) or if owner is a fleet
	// member whose lease has expired, the recorded decision or else an abort
	// recorded now; Undecided while another owner lives. shards lists a
	// commit decision's participants.
	Resolve(ctx context.Context, gid, owner string, own bool) (o Outcome, shards []string, err error)
	// Forget drops gid's decision once no shard holds it prepared.
	Forget(ctx context.Context, gid string)
}

// InstanceOf extracts the instance id from a gid pgrouter prepared
// ("" when gid is not one of pgrouter's).
func InstanceOf(gid string) string {
	if len(gid) <= len(GIDPrefix) || gid[:len(GIDPrefix)] != GIDPrefix {
		return ""
	}
	rest := gid[len(GIDPrefix):]
	for i := 0; i < len(rest); i++ {
		if rest[i] == '_' {
			return rest[:i]
		}
	}
	return ""
}

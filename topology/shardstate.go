package topology

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// sampleRing is how many recent primary WAL samples a shard keeps to resolve
// read-your-writes floors and to date the start of a replica's lag.
const sampleRing = 32

// walSample is one pg_current_wal_lsn() reading of the shard's primary.
// seq was claimed before the query was sent, so the LSN covers every commit
// acknowledged before the claim. Immutable once published.
type walSample struct {
	seq      uint64
	lsn      uint64    // pg_current_wal_lsn(): for lag
	floorLSN uint64    // end of the last inserted record: for read-your-writes
	at       time.Time // when the answer arrived
}

// shardState is the live, per-shard state that outlives snapshots while the
// shard's name stays in the configuration: the elected primary, the WAL
// sample ring, and the load-balancing counter.
type shardState struct {
	name      string
	failovers *atomic.Uint64
	log       *slog.Logger
	poolCap   *atomic.Pointer[int] // the topology's fleet cap on pool sizes (poolcap.go); nil in unit tests

	nodes atomic.Pointer[[]*Node] // current members, configured primary first

	issued  atomic.Uint64                         // last sample sequence claimed
	latest  atomic.Pointer[walSample]             // newest published sample
	samples [sampleRing]atomic.Pointer[walSample] // indexed by seq % sampleRing

	rr atomic.Uint64 // round-robin / tie-break counter

	electMu     sync.Mutex
	elected     atomic.Pointer[Node] // node Primary() returns when writable
	maxTimeline uint32               // highest primary timeline seen (under electMu)
}

func newShardState(name string, failovers *atomic.Uint64, log *slog.Logger) *shardState {
	return &shardState{name: name, failovers: failovers, log: log}
}

// claimSeq reserves the sequence number of a primary sample about to be taken.
func (s *shardState) claimSeq() uint64 { return s.issued.Add(1) }

// publish records a primary sample. Samples may arrive out of order when two
// nodes both claimed a seq; latest only moves forward.
func (s *shardState) publish(seq, lsn, floorLSN uint64, at time.Time) {
	smp := &walSample{seq: seq, lsn: lsn, floorLSN: floorLSN, at: at}
	s.samples[seq%sampleRing].Store(smp)
	for {
		cur := s.latest.Load()
		if cur != nil && cur.seq >= seq {
			return
		}
		if s.latest.CompareAndSwap(cur, smp) {
			return
		}
	}
}

// resolve returns the LSN of the oldest kept sample with seq ≥ want, the
// tightest LSN known to cover every commit acknowledged before want was
// handed out. ok is false until such a sample exists. Lock- and alloc-free.
func (s *shardState) resolve(want uint64) (lsn uint64, ok bool) {
	latest := s.latest.Load()
	if latest == nil || latest.seq < want {
		return 0, false
	}
	best := latest
	for i := range s.samples {
		smp := s.samples[i].Load()
		if smp != nil && smp.seq >= want && smp.seq < best.seq {
			best = smp
		}
	}
	return best.floorLSN, true
}

// behindSince estimates since when the primary has had WAL beyond replay:
// the arrival time of the oldest kept sample past replay, provided an even
// older kept sample was not past it (else the lag began before the ring).
func (s *shardState) behindSince(replay uint64) (since time.Time, ok bool) {
	var first, beforeFirst *walSample
	for i := range s.samples {
		smp := s.samples[i].Load()
		if smp == nil {
			continue
		}
		if smp.lsn > replay {
			if first == nil || smp.seq < first.seq {
				first = smp
			}
		} else if beforeFirst == nil || smp.seq > beforeFirst.seq {
			beforeFirst = smp
		}
	}
	if first == nil || beforeFirst == nil || beforeFirst.seq > first.seq {
		return time.Time{}, false
	}
	return first.at, true
}

// elect re-chooses the shard's primary after a check. Rule: among members
// detected not in recovery, writable, and on the highest timeline ever seen
// in this shard (a primary on an older timeline is a demoted node that came
// back: split brain, never written to), prefer the current choice (sticky),
// then the newest WAL LSN, then the configured primary. With no candidate the
// previous choice is kept; Primary() re-checks it live and fails fast.
func (s *shardState) elect(failThreshold int) {
	s.electMu.Lock()
	defer s.electMu.Unlock()
	members := *s.nodes.Load()
	for _, n := range members {
		if n.checked.Load() && Role(n.role.Load()) == RolePrimary && n.up.Load() && n.timeline.Load() > s.maxTimeline {
			s.maxTimeline = n.timeline.Load()
		}
	}
	cur := s.elected.Load()
	var best *Node
	for _, n := range members {
		if !n.checked.Load() || !n.writable(failThreshold) || n.timeline.Load() < s.maxTimeline {
			continue
		}
		if best == nil || betterPrimary(n, best, cur) {
			best = n
		}
	}
	if best == nil || best == cur {
		return
	}
	s.elected.Store(best)
	if cur != nil {
		s.failovers.Add(1)
		s.log.Warn("primary changed (failover)", "shard", s.name, "node", best.Name, "role", RolePrimary.String(), "from", cur.Name,
			"timeline", best.timeline.Load())
	}
}

// betterPrimary reports whether a beats b (same timeline assumed).
func betterPrimary(a, b, cur *Node) bool {
	if (a == cur) != (b == cur) {
		return a == cur
	}
	if a.lsn.Load() != b.lsn.Load() {
		return a.lsn.Load() > b.lsn.Load()
	}
	return a.configured == RolePrimary && b.configured != RolePrimary
}

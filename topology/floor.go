package topology

// Floor is a read-your-writes token: reads must go to a node whose replay
// position has reached it. The zero Floor means "no constraint".
//
// Seq names "the first primary WAL sample of the shard taken after the
// write committed": every sample claims its sequence number before its query
// is sent, so that sample's LSN covers the write. LSN is that sample's value
// once known (0 while unresolved). A later floor of the same shard always
// supersedes an earlier one, so a session keeps only its newest per shard.
type Floor struct{ Seq, LSN uint64 }

// Resolved reports whether the floor's LSN is known.
func (f Floor) Resolved() bool { return f.Seq == 0 || f.LSN != 0 }

// WriteFloor returns the floor a client must wait for after a write commits
// on shard now. Call it after the commit was acknowledged. It is the zero
// Floor (no constraint) when replicas.read_your_writes is off or the shard
// index is out of range. Lock-free and allocation-free.
func (s *Snapshot) WriteFloor(shard int) Floor {
	if !s.settings.readYourWrites || shard < 0 || shard >= len(s.Shards) {
		return Floor{}
	}
	return Floor{Seq: s.Shards[shard].state.issued.Load() + 1}
}

// Resolve fills in f.LSN when the shard's primary has been sampled at or
// after f.Seq; otherwise it returns f unchanged. Sessions may store the
// resolved floor so later reads skip the lookup (Replica resolves too).
func (s *Snapshot) Resolve(shard int, f Floor) Floor {
	if f.Resolved() || shard < 0 || shard >= len(s.Shards) {
		return f
	}
	if lsn, ok := s.Shards[shard].state.resolve(f.Seq); ok {
		f.LSN = lsn
	}
	return f
}

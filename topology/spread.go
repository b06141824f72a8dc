package topology

import "math/bits"

// SpreadShard picks the shard that serves a read any shard can answer (no
// sharded data: SELECT now(), catalog and reference-table reads). Always
// taking the first shard would load its nodes alone; instead the reads
// rotate over every replica of the shards in mask that is eligible for the
// session (healthy, within lag bounds, past its read-your-writes floor), so
// each such node gets an equal share; Replica then picks the node inside
// the chosen shard. With no eligible replica anywhere the reads rotate over
// the shards (their primaries serve them by fallback). mask is a bit set of
// shard indexes; floors is the session's per-shard floor.
// Lock-free and allocation-free.
func (s *Snapshot) SpreadShard(mask uint64, floors []Floor) int {
	mask &= 1<<uint(len(s.Shards)) - 1
	if len(s.Shards) >= 64 {
		mask = ^uint64(0)
	}
	if mask == 0 {
		return 0
	}
	if mask&(mask-1) == 0 {
		return bits.TrailingZeros64(mask)
	}
	total := 0
	for m := mask; m != 0; m &= m - 1 {
		total += s.eligibleIn(bits.TrailingZeros64(m), floors)
	}
	turn := s.spread.Add(1)
	if total == 0 {
		k := int(turn % uint64(bits.OnesCount64(mask)))
		for m := mask; ; m &= m - 1 {
			if k == 0 {
				return bits.TrailingZeros64(m)
			}
			k--
		}
	}
	k := int(turn % uint64(total))
	last := 0
	for m := mask; m != 0; m &= m - 1 {
		i := bits.TrailingZeros64(m)
		n := s.eligibleIn(i, floors)
		if n > 0 {
			last = i
		}
		if k < n {
			return i
		}
		k -= n
	}
	return last // replicas changed state while we counted
}

// eligibleIn counts shard i's replicas that may serve the session's reads.
func (s *Snapshot) eligibleIn(i int, floors []Floor) int {
	sh := s.Shards[i]
	if sh.replicas == 0 {
		return 0
	}
	var floor Floor
	if i < len(floors) {
		floor = floors[i]
	}
	lsn := floor.LSN
	if floor.Seq != 0 && lsn == 0 {
		var ok bool
		if lsn, ok = sh.state.resolve(floor.Seq); !ok {
			return 0
		}
	}
	n, _ := sh.countEligible(lsn)
	return n
}

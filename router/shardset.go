package router

import "math/bits"

// MaxShards is the most shards a Router handles (ShardSet is a 64-bit set).
const MaxShards = 64

// ShardSet is a set of shard indexes 0..63.
type ShardSet uint64

// AllShards is the set {0..n-1}.
func AllShards(n int) ShardSet {
	if n >= MaxShards {
		return ^ShardSet(0)
	}
	return ShardSet(1)<<uint(n) - 1
}

// Only is the set {i}.
func Only(i int) ShardSet { return ShardSet(1) << uint(i) }

// Len is the number of shards in s.
func (s ShardSet) Len() int { return bits.OnesCount64(uint64(s)) }

// First is the lowest shard index in s, or -1 when s is empty.
func (s ShardSet) First() int {
	if s == 0 {
		return -1
	}
	return bits.TrailingZeros64(uint64(s))
}

// Has reports whether shard i is in s.
func (s ShardSet) Has(i int) bool { return i >= 0 && i < MaxShards && s&Only(i) != 0 }

// Add returns s ∪ {i}.
func (s ShardSet) Add(i int) ShardSet { return s | Only(i) }

// Each calls f for every shard in s, in increasing order.
func (s ShardSet) Each(f func(i int)) {
	for s != 0 {
		i := bits.TrailingZeros64(uint64(s))
		f(i)
		s &^= Only(i)
	}
}

package sharding

import (
	"encoding/binary"
	"math/bits"
)

// hashPartitionSeed is Postgres's HASH_PARTITION_SEED (src/include/catalog/partition.h):
// every partition key column is hashed with this seed.
const hashPartitionSeed uint64 = 0x7A5B22367996DCFD

// hashCombineConst is the 64-bit constant of Postgres's hash_combine64.
const hashCombineConst uint64 = 0x49a0f4dd15e5a8e3

// lookup3Init is the initial value of a, b and c in Bob Jenkins' lookup3 as
// adapted by Postgres, before the key length is added.
const lookup3Init uint32 = 0x9e3779b9 + 3923095

// PartitionHash returns the 64-bit row hash Postgres computes for a single
// column partition key holding k (compute_partition_hash_value): the type's
// extended hash with HASH_PARTITION_SEED, combined into 0 with hash_combine64.
// The remainder of PARTITION BY HASH with MODULUS m is PartitionHash % m.
// A NULL key hashes to 0, as in Postgres. k must be valid for t (a uuid key
// holds 16 bytes); ok is false otherwise.
func PartitionHash(t Type, k Key) (h uint64, ok bool) {
	if k.Null {
		return 0, true
	}
	switch t {
	case TypeInt:
		h = hashInt8Extended(k.Int, hashPartitionSeed)
	case TypeText:
		h = hashBytesExtended(k.Bytes, hashPartitionSeed)
	case TypeUUID:
		if len(k.Bytes) != uuidLen {
			return 0, false
		}
		h = hashBytesExtended(k.Bytes, hashPartitionSeed)
	default:
		return 0, false
	}
	return hashCombine64(0, h), true
}

// hashCombine64 is Postgres's hash_combine64 (src/include/common/hashfn.h).
func hashCombine64(a, b uint64) uint64 {
	a ^= b + hashCombineConst + (a << 54) + (a >> 7)
	return a
}

// hashInt8Extended is Postgres's hashint8extended. Folding the high half into
// the low half (inverted for negatives) makes int2, int4 and int8 keys with the
// same value hash alike, which is why one Go function serves all three.
func hashInt8Extended(v int64, seed uint64) uint64 {
	lo := uint32(v)
	hi := uint32(v >> 32)
	if v >= 0 {
		lo ^= hi
	} else {
		lo ^= ^hi
	}
	return hashUint32Extended(lo, seed)
}

// hashUint32Extended is Postgres's hash_bytes_uint32_extended: lookup3 over
// one 32-bit word, returning b<<32 | c.
func hashUint32Extended(k uint32, seed uint64) uint64 {
	a := lookup3Init + 4
	b, c := a, a
	if seed != 0 {
		a += uint32(seed >> 32)
		b += uint32(seed)
		a, b, c = mix(a, b, c)
	}
	a += k
	_, b, c = final(a, b, c) // Postgres returns b and c only
	return uint64(b)<<32 | uint64(c)
}

// hashBytesExtended is Postgres's hash_bytes_extended (hash_any_extended) as
// it runs on a little-endian machine: words are read little-endian, and in
// the tail the lowest byte of c stays free (it once held the length).
func hashBytesExtended(k []byte, seed uint64) uint64 {
	a := lookup3Init + uint32(len(k))
	b, c := a, a
	if seed != 0 {
		// Postgres treats the seed as a 12-byte chunk padded with zeroes.
		a += uint32(seed >> 32)
		b += uint32(seed)
		a, b, c = mix(a, b, c)
	}
	for len(k) >= 12 {
		a += binary.LittleEndian.Uint32(k[0:4])
		b += binary.LittleEndian.Uint32(k[4:8])
		c += binary.LittleEndian.Uint32(k[8:12])
		a, b, c = mix(a, b, c)
		k = k[12:]
	}
	a, b, c = addTail(a, b, c, k)
	_, b, c = final(a, b, c) // Postgres returns b and c only
	return uint64(b)<<32 | uint64(c)
}

// addTail adds the last 0..11 bytes: bytes 0-3 into a, 4-7 into b, and 8-10
// into c shifted up by one byte.
func addTail(a, b, c uint32, k []byte) (uint32, uint32, uint32) {
	n := len(k)
	if n >= 9 {
		for i := n - 1; i >= 8; i-- {
			c += uint32(k[i]) << (8 * (i - 7))
		}
		n = 8
	}
	if n >= 5 {
		for i := n - 1; i >= 4; i-- {
			b += uint32(k[i]) << (8 * (i - 4))
		}
		n = 4
	}
	for i := n - 1; i >= 0; i-- {
		a += uint32(k[i]) << (8 * i)
	}
	return a, b, c
}

// mix is lookup3's mix(): reversible mixing of three words.
func mix(a, b, c uint32) (uint32, uint32, uint32) {
	a -= c
	a ^= bits.RotateLeft32(c, 4)
	c += b
	b -= a
	b ^= bits.RotateLeft32(a, 6)
	a += c
	c -= b
	c ^= bits.RotateLeft32(b, 8)
	b += a
	a -= c
	a ^= bits.RotateLeft32(c, 16)
	c += b
	b -= a
	b ^= bits.RotateLeft32(a, 19)
	a += c
	c -= b
	c ^= bits.RotateLeft32(b, 4)
	b += a
	return a, b, c
}

// final is lookup3's final(): last mixing of (a, b, c) into c (and b).
func final(a, b, c uint32) (uint32, uint32, uint32) {
	c ^= b
	c -= bits.RotateLeft32(b, 14)
	a ^= c
	a -= bits.RotateLeft32(c, 11)
	b ^= a
	b -= bits.RotateLeft32(a, 25)
	c ^= b
	c -= bits.RotateLeft32(b, 16)
	a ^= c
	a -= bits.RotateLeft32(c, 4)
	b ^= a
	b -= bits.RotateLeft32(a, 14)
	c ^= b
	c -= bits.RotateLeft32(b, 24)
	return a, b, c
}

package sharding

import "bytes"

// compareKeys orders two non-NULL keys of type t: int numerically, text and
// uuid bytewise. Bytewise text order is C-collation order (memcmp of UTF-8,
// which is also code point order); it is NOT the order of a linguistic
// collation such as en_US, so range bounds on text are C-collation ranges.
func compareKeys(t Type, a, b Key) int {
	if t == TypeInt {
		switch {
		case a.Int < b.Int:
			return -1
		case a.Int > b.Int:
			return 1
		}
		return 0
	}
	return bytes.Compare(a.Bytes, b.Bytes)
}

// validKey reports whether a non-NULL key is well-formed for t.
func validKey(t Type, k Key) bool {
	return t != TypeUUID || len(k.Bytes) == uuidLen
}

package sharding

import (
	"encoding/binary"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
)

// Type OIDs of the Postgres types a shard-key Bind parameter may carry.
const (
	oidInt8    = 20
	oidInt2    = 21
	oidInt4    = 23
	oidText    = 25
	oidUnknown = 705
	oidVarchar = 1043
	oidUUID    = 2950
)

const uuidLen = 16

// KeyFromText parses a key from an SQL literal's text or a text-format Bind
// parameter. A nil s is SQL NULL (pgproto3 decodes a NULL parameter as nil).
//
//   - int: optional surrounding whitespace, optional + or -, decimal digits;
//     must fit int64 (as Postgres's int8in in PG15).
//   - text: the bytes as they are; the Key aliases s.
//   - uuid: the forms Postgres's uuid_in accepts: 32 hex digits, optionally in
//     braces, with a hyphen allowed after any group of four digits (so the
//     standard 8-4-4-4-12 form). This allocates the 16-byte result
//     (KeyFromTextBuf does not).
//
// Errors are *pgconn.PgError (22P02, 22003) and never include the value.
func KeyFromText(t Type, s []byte) (Key, error) {
	if s == nil {
		return Key{Null: true}, nil
	}
	switch t {
	case TypeInt:
		v, err := parseInt(s)
		return Key{Int: v}, err
	case TypeText:
		return Key{Bytes: s}, nil
	case TypeUUID:
		return uuidFromText(s, make([]byte, uuidLen))
	}
	return Key{}, fmt.Errorf("sharding: invalid key type %v", t)
}

// KeyFromTextBuf is KeyFromText that decodes a uuid into buf instead of a
// new slice, so hot paths can parse uuid literals without allocating; the
// returned Key then aliases buf. Pass a scratch array the caller reuses (in
// a session or plan state): Func.Shard is an interface call, so the compiler
// moves a stack array handed to it to the heap.
func KeyFromTextBuf(t Type, s []byte, buf *[uuidLen]byte) (Key, error) {
	if t == TypeUUID && s != nil {
		return uuidFromText(s, buf[:])
	}
	return KeyFromText(t, s)
}

func uuidFromText(s, dst []byte) (Key, error) {
	if !parseUUID(dst, s) {
		return Key{}, errSyntax(TypeUUID)
	}
	return Key{Bytes: dst}, nil
}

// KeyFromBinary decodes a binary-format Bind parameter of type oid (0 when the
// client left it unspecified). A nil b is SQL NULL.
//
//   - int: int2/int4/int8 big-endian, chosen by oid, or by length when oid is 0.
//   - text: text/varchar/unknown raw bytes (aliased, not copied).
//   - uuid: 16 raw bytes (aliased).
//
// A text/varchar parameter for an int or uuid key is parsed as text, since
// the binary form of text is its bytes. Other combinations fail with 0A000.
func KeyFromBinary(t Type, oid uint32, b []byte) (Key, error) {
	if b == nil {
		return Key{Null: true}, nil
	}
	if isTextOID(oid) && t != TypeText {
		return KeyFromText(t, b)
	}
	switch t {
	case TypeInt:
		return intFromBinary(oid, b)
	case TypeText:
		if oid != 0 && !isTextOID(oid) {
			return Key{}, errBinaryType(t, oid)
		}
		return Key{Bytes: b}, nil
	case TypeUUID:
		if oid != 0 && oid != oidUUID {
			return Key{}, errBinaryType(t, oid)
		}
		if len(b) != uuidLen {
			return Key{}, errBinaryLen(t, len(b))
		}
		return Key{Bytes: b}, nil
	}
	return Key{}, fmt.Errorf("sharding: invalid key type %v", t)
}

func isTextOID(oid uint32) bool {
	return oid == oidText || oid == oidVarchar || oid == oidUnknown
}

func intFromBinary(oid uint32, b []byte) (Key, error) {
	want := 0
	switch oid {
	case oidInt2:
		want = 2
	case oidInt4:
		want = 4
	case oidInt8:
		want = 8
	case 0:
		want = len(b)
	default:
		return Key{}, errBinaryType(TypeInt, oid)
	}
	if len(b) != want {
		return Key{}, errBinaryLen(TypeInt, len(b))
	}
	switch want {
	case 2:
		return Key{Int: int64(int16(binary.BigEndian.Uint16(b)))}, nil
	case 4:
		return Key{Int: int64(int32(binary.BigEndian.Uint32(b)))}, nil
	case 8:
		return Key{Int: int64(binary.BigEndian.Uint64(b))}, nil
	}
	return Key{}, errBinaryLen(TypeInt, len(b))
}

func errBinaryType(t Type, oid uint32) *pgconn.PgError {
	return pgErr(codeFeatureNotSupported,
		fmt.Sprintf("binary parameter of type oid %d cannot be a %s shard key", oid, t),
		"send the shard key as text or with the column's type")
}

func errBinaryLen(t Type, n int) *pgconn.PgError {
	return pgErr(codeInvalidBinary,
		fmt.Sprintf("binary %s shard key has invalid length %d", t, n), "")
}

// parseInt parses a decimal int64 the way Postgres's int8in (PG15) does:
// leading and trailing whitespace allowed, an optional sign, at least one digit.
func parseInt(s []byte) (int64, error) {
	s = trimSpace(s)
	neg := false
	if len(s) > 0 && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	if len(s) == 0 {
		return 0, errSyntax(TypeInt)
	}
	// Accumulate as a negative number so that -9223372036854775808 fits.
	var v int64
	for _, ch := range s {
		if ch < '0' || ch > '9' {
			return 0, errSyntax(TypeInt)
		}
		d := int64(ch - '0')
		if v < (minInt64+d)/10 {
			return 0, errIntRange()
		}
		v = v*10 - d
	}
	if !neg {
		if v == minInt64 {
			return 0, errIntRange()
		}
		v = -v
	}
	return v, nil
}

const minInt64 = -1 << 63

func errIntRange() *pgconn.PgError {
	return pgErr(codeOutOfRange, "int shard key is out of range for type bigint", "")
}

// trimSpace trims the bytes C's isspace() accepts, like Postgres does.
func trimSpace(s []byte) []byte {
	for len(s) > 0 && isSpace(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && isSpace(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

// parseUUID decodes the text forms uuid_in accepts into dst (16 bytes).
func parseUUID(dst, s []byte) bool {
	braces := len(s) > 0 && s[0] == '{'
	if braces {
		s = s[1:]
	}
	for i := 0; i < uuidLen; i++ {
		if len(s) < 2 {
			return false
		}
		hi, ok1 := unhex(s[0])
		lo, ok2 := unhex(s[1])
		if !ok1 || !ok2 {
			return false
		}
		dst[i] = hi<<4 | lo
		s = s[2:]
		if len(s) > 0 && s[0] == '-' && i%2 == 1 && i < uuidLen-1 {
			s = s[1:]
		}
	}
	if braces {
		if len(s) == 0 || s[0] != '}' {
			return false
		}
		s = s[1:]
	}
	return len(s) == 0
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

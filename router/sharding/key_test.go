package sharding

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgrouter/pgrouter/config"
)

func TestParseType(t *testing.T) {
	for in, want := range map[string]Type{
		"int": TypeInt, "INT": TypeInt, "bigint": TypeInt, "integer": TypeInt, "int4": TypeInt,
		"text": TypeText, "varchar": TypeText, "uuid": TypeUUID, " uuid ": TypeUUID,
	} {
		got, err := ParseType(in)
		if err != nil || got != want {
			t.Errorf("ParseType(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "float", "numeric", "bytea"} {
		if _, err := ParseType(bad); err == nil {
			t.Errorf("ParseType(%q) succeeded", bad)
		}
	}
	if TypeInt.String() != "int" || TypeText.String() != "text" || TypeUUID.String() != "uuid" {
		t.Error("Type.String does not round-trip the config spelling")
	}
}

// wantCode asserts err is a *pgconn.PgError with the given SQLSTATE.
func wantCode(t *testing.T, err error, code string) *pgconn.PgError {
	t.Helper()
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not a *pgconn.PgError", err, err)
	}
	if pe.Code != code || pe.Severity != "ERROR" {
		t.Fatalf("error %q: code %s severity %s, want %s ERROR", pe.Message, pe.Code, pe.Severity, code)
	}
	return pe
}

func TestKeyFromTextInt(t *testing.T) {
	good := map[string]int64{
		"0": 0, "12": 12, "+12": 12, "-7": -7, " 42 ": 42, "\t-1\n": -1, "007": 7,
		"9223372036854775807":  9223372036854775807,
		"-9223372036854775808": -9223372036854775808,
		"2147483648":           1 << 31,
	}
	for in, want := range good {
		k, err := KeyFromText(TypeInt, []byte(in))
		if err != nil || k.Null || k.Int != want {
			t.Errorf("KeyFromText(int, %q) = %+v, %v; want %d", in, k, err, want)
		}
	}
	bad := map[string]string{
		"": codeInvalidText, " ": codeInvalidText, "+": codeInvalidText, "-": codeInvalidText,
		"1.5": codeInvalidText, "1e3": codeInvalidText, "abc": codeInvalidText, "1 2": codeInvalidText,
		"0x10": codeInvalidText, "--1": codeInvalidText, "12a": codeInvalidText,
		"9223372036854775808":   codeOutOfRange,
		"-9223372036854775809":  codeOutOfRange,
		"99999999999999999999":  codeOutOfRange,
		"-99999999999999999999": codeOutOfRange,
	}
	for in, code := range bad {
		_, err := KeyFromText(TypeInt, []byte(in))
		pe := wantCode(t, err, code)
		if len(in) > 2 && bytes.Contains([]byte(pe.Message), []byte(in)) {
			t.Errorf("error message %q leaks the value %q", pe.Message, in)
		}
	}
}

func TestKeyFromTextTextAliases(t *testing.T) {
	buf := []byte("héllo wörld")
	k, err := KeyFromText(TypeText, buf)
	if err != nil || k.Null || string(k.Bytes) != "héllo wörld" {
		t.Fatalf("KeyFromText(text) = %+v, %v", k, err)
	}
	if &k.Bytes[0] != &buf[0] {
		t.Error("text key copied its input; documented to alias it")
	}
	k, err = KeyFromText(TypeText, []byte{})
	if err != nil || k.Null || len(k.Bytes) != 0 {
		t.Errorf("empty text = %+v, %v; want a non-NULL empty key", k, err)
	}
}

func TestKeyFromTextUUID(t *testing.T) {
	want := []byte{0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8, 0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38, 0x0a, 0x11}
	// The forms from the Postgres manual's uuid section.
	for _, in := range []string{
		"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
		"A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
		"{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}",
		"a0eebc999c0b4ef8bb6d6bb9bd380a11",
		"a0ee-bc99-9c0b-4ef8-bb6d-6bb9-bd38-0a11",
		"{a0eebc99-9c0b4ef8-bb6d6bb9-bd380a11}",
	} {
		k, err := KeyFromText(TypeUUID, []byte(in))
		if err != nil || !bytes.Equal(k.Bytes, want) {
			t.Errorf("KeyFromText(uuid, %q) = %x, %v", in, k.Bytes, err)
		}
	}
	for _, in := range []string{
		"", "a0eebc99", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a111",
		"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11-", "-a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
		"{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}",
		"a0eeb-c99-9c0b-4ef8-bb6d-6bb9bd380a11", "g0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
		" a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "a0eebc99--9c0b-4ef8-bb6d-6bb9bd380a11",
	} {
		_, err := KeyFromText(TypeUUID, []byte(in))
		wantCode(t, err, codeInvalidText)
	}
}

func TestKeyFromNilIsNull(t *testing.T) {
	for _, typ := range []Type{TypeInt, TypeText, TypeUUID} {
		if k, err := KeyFromText(typ, nil); err != nil || !k.Null {
			t.Errorf("KeyFromText(%v, nil) = %+v, %v; want NULL", typ, k, err)
		}
		if k, err := KeyFromBinary(typ, 0, nil); err != nil || !k.Null {
			t.Errorf("KeyFromBinary(%v, nil) = %+v, %v; want NULL", typ, k, err)
		}
	}
}

func be16(v int16) []byte { return binary.BigEndian.AppendUint16(nil, uint16(v)) }
func be32(v int32) []byte { return binary.BigEndian.AppendUint32(nil, uint32(v)) }
func be64(v int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(v)) }

func TestKeyFromBinaryInt(t *testing.T) {
	cases := []struct {
		oid  uint32
		b    []byte
		want int64
	}{
		{oidInt2, be16(-32768), -32768},
		{oidInt2, be16(7), 7},
		{oidInt4, be32(-1 << 31), -1 << 31},
		{oidInt4, be32(1<<31 - 1), 1<<31 - 1},
		{oidInt8, be64(-1 << 63), -1 << 63},
		{oidInt8, be64(1<<63 - 1), 1<<63 - 1},
		{0, be16(-2), -2},
		{0, be32(-3), -3},
		{0, be64(1 << 40), 1 << 40},
		{oidText, []byte("-12"), -12}, // binary text is its bytes
		{oidVarchar, []byte("+5"), 5},
	}
	for _, c := range cases {
		k, err := KeyFromBinary(TypeInt, c.oid, c.b)
		if err != nil || k.Null || k.Int != c.want {
			t.Errorf("KeyFromBinary(int, %d, %x) = %+v, %v; want %d", c.oid, c.b, k, err, c.want)
		}
	}
	bad := []struct {
		oid  uint32
		b    []byte
		code string
	}{
		{oidInt4, be64(1), codeInvalidBinary},
		{oidInt8, be32(1), codeInvalidBinary},
		{oidInt2, []byte{1}, codeInvalidBinary},
		{0, []byte{1, 2, 3}, codeInvalidBinary},
		{0, []byte{}, codeInvalidBinary},
		{700 /* float4 */, be32(1), codeFeatureNotSupported},
		{oidUUID, make([]byte, 16), codeFeatureNotSupported},
		{oidText, []byte("x"), codeInvalidText},
	}
	for _, c := range bad {
		_, err := KeyFromBinary(TypeInt, c.oid, c.b)
		wantCode(t, err, c.code)
	}
}

func TestKeyFromBinaryTextAndUUID(t *testing.T) {
	for _, oid := range []uint32{0, oidText, oidVarchar, oidUnknown} {
		k, err := KeyFromBinary(TypeText, oid, []byte("ключ"))
		if err != nil || string(k.Bytes) != "ключ" {
			t.Errorf("KeyFromBinary(text, %d) = %+v, %v", oid, k, err)
		}
	}
	_, err := KeyFromBinary(TypeText, oidInt4, be32(1))
	wantCode(t, err, codeFeatureNotSupported)

	raw := []byte("0123456789abcdef")
	for _, oid := range []uint32{0, oidUUID} {
		k, err := KeyFromBinary(TypeUUID, oid, raw)
		if err != nil || !bytes.Equal(k.Bytes, raw) {
			t.Errorf("KeyFromBinary(uuid, %d) = %+v, %v", oid, k, err)
		}
	}
	k, err := KeyFromBinary(TypeUUID, oidText, []byte("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"))
	if err != nil || len(k.Bytes) != 16 || k.Bytes[0] != 0xa0 {
		t.Errorf("uuid sent as binary text = %x, %v", k.Bytes, err)
	}
	_, err = KeyFromBinary(TypeUUID, oidUUID, raw[:15])
	wantCode(t, err, codeInvalidBinary)
	_, err = KeyFromBinary(TypeUUID, oidInt8, be64(1))
	wantCode(t, err, codeFeatureNotSupported)
}

func TestKeyFromTextBufNoAlloc(t *testing.T) {
	s := []byte("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
	f := mustNew(t, &config.ShardedTable{Table: "t", Type: "uuid"}, 4)
	var want int
	scratch := new([16]byte) // reused, as a session's scratch buffer would be
	allocs := testing.AllocsPerRun(100, func() {
		k, err := KeyFromTextBuf(TypeUUID, s, scratch)
		if err != nil {
			t.Fatal(err)
		}
		want, _ = f.Shard(k)
	})
	if allocs != 0 {
		t.Errorf("KeyFromTextBuf+Shard: %v allocations", allocs)
	}
	k, _ := KeyFromText(TypeUUID, s)
	if got, _ := f.Shard(k); got != want {
		t.Errorf("KeyFromTextBuf and KeyFromText disagree: %d vs %d", want, got)
	}
	var buf [16]byte
	if k, err := KeyFromTextBuf(TypeInt, []byte("-3"), &buf); err != nil || k.Int != -3 {
		t.Errorf("KeyFromTextBuf(int) = %+v, %v", k, err)
	}
	if k, err := KeyFromTextBuf(TypeUUID, nil, &buf); err != nil || !k.Null {
		t.Errorf("KeyFromTextBuf(uuid, nil) = %+v, %v", k, err)
	}
}

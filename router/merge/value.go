package merge

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unsafe"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgrouter/pgrouter/pgwire"
)

// value is one decoded, comparable cell. null values carry no kind data.
type value struct {
	null bool
	k    kind
	i    int64    // kindInt, kindBool (0/1), kindTime
	f    float64  // kindFloat
	d    *decimal // kindNumeric
	b    []byte   // kindBytes
}

// decode reads a cell of column c (nil = NULL) into a comparable value.
// A text-like value aliases raw (no copy per cell): keep it only while raw
// is valid, or decode a copy (aggregates keep min/max that way).
func decode(c column, raw []byte) (value, error) {
	if raw == nil {
		return value{null: true, k: c.kind}, nil
	}
	if err := c.checkComparable("comparing values"); err != nil {
		return value{}, err
	}
	v := value{k: c.kind}
	var err error
	if c.format == 1 {
		err = v.decodeBinary(c.oid, raw)
	} else {
		err = v.decodeText(c.oid, unsafe.String(unsafe.SliceData(raw), len(raw)))
	}
	if errors.Is(err, errNotISO) {
		return value{}, notISOError(c.name)
	}
	if err != nil {
		return value{}, fmt.Errorf("merge: column %q: %w", c.name, err)
	}
	return v, nil
}

// notISOError refuses to order or aggregate dates and times the shards
// print in another DateStyle than ISO (German, SQL, Postgres: day and
// month orders, zone abbreviations): they would be merged wrong.
func notISOError(column string) *pgconn.PgError {
	return pgwire.Error(pgwire.FeatureNotSupported,
		fmt.Sprintf("column %q cannot be merged across shards: its dates and times are not printed in the ISO DateStyle", column),
		"SET DateStyle = ISO (or read the column in binary format), or restrict the query to one shard")
}

// decodeText reads a value's text form; a text-like value aliases s
// (read-only: nothing writes to value.b).
func (v *value) decodeText(oid uint32, s string) (err error) {
	switch v.k {
	case kindInt:
		v.i, err = strconv.ParseInt(s, 10, 64)
		if err != nil && oid == oidOID {
			var u uint64
			u, err = strconv.ParseUint(s, 10, 32)
			v.i = int64(u)
		}
	case kindFloat:
		v.f, err = parseFloatText(s)
	case kindNumeric:
		v.d, err = parseNumeric(s)
	case kindBytes:
		v.b = unsafe.Slice(unsafe.StringData(s), len(s))
		if oid == oidBpchar {
			v.b = bytes.TrimRight(v.b, " ")
		}
	case kindBool:
		switch s {
		case "t":
			v.i = 1
		case "f":
		default:
			err = fmt.Errorf("bad boolean %q", s)
		}
	case kindTime:
		v.i, err = parseTimeText(oid, s)
	}
	return err
}

func (v *value) decodeBinary(oid uint32, b []byte) error {
	if want := binaryWidth(oid); want != 0 && len(b) != want {
		return fmt.Errorf("binary %s value has %d bytes", typeName(oid), len(b))
	}
	switch oid {
	case oidInt2:
		v.i = int64(int16(binary.BigEndian.Uint16(b)))
	case oidInt4, oidDate:
		v.i = int64(int32(binary.BigEndian.Uint32(b)))
	case oidOID:
		v.i = int64(binary.BigEndian.Uint32(b))
	case oidInt8, oidTimestamp, oidTimestamptz:
		v.i = int64(binary.BigEndian.Uint64(b))
	case oidFloat4:
		v.f = float64(math.Float32frombits(binary.BigEndian.Uint32(b)))
	case oidFloat8:
		v.f = math.Float64frombits(binary.BigEndian.Uint64(b))
	case oidBool:
		v.i = int64(b[0])
	case oidNumeric:
		d, err := parseNumericBinary(b)
		if err != nil {
			return err
		}
		v.d = d
	case oidBpchar:
		v.b = bytes.TrimRight(b, " ")
	default: // text-like and uuid: the bytes compare as the values do
		v.b = b
	}
	return nil
}

// binaryWidth is the size of a fixed-width type's binary value; 0 for
// variable-width types.
func binaryWidth(oid uint32) int {
	switch oid {
	case oidBool:
		return 1
	case oidInt2:
		return 2
	case oidInt4, oidOID, oidFloat4, oidDate:
		return 4
	case oidInt8, oidFloat8, oidTimestamp, oidTimestamptz:
		return 8
	case oidUUID:
		return 16
	}
	return 0
}

// parseFloatText reads float4/float8 output, including its spellings of the
// special values.
func parseFloatText(s string) (float64, error) {
	switch s {
	case "NaN":
		return math.NaN(), nil
	case "Infinity":
		return math.Inf(1), nil
	case "-Infinity":
		return math.Inf(-1), nil
	}
	return strconv.ParseFloat(s, 64)
}

// compare orders two non-NULL values of the same kind as Postgres does
// (text bytewise, as under the C collation; float and numeric NaN above
// everything and equal to itself).
func compare(a, b value) int {
	switch a.k {
	case kindInt, kindBool, kindTime:
		return cmpOrdered(a.i, b.i)
	case kindFloat:
		an, bn := math.IsNaN(a.f), math.IsNaN(b.f)
		switch {
		case an && bn:
			return 0
		case an:
			return 1
		case bn:
			return -1
		}
		return cmpOrdered(a.f, b.f)
	case kindNumeric:
		return a.d.cmp(b.d)
	case kindBytes:
		return bytes.Compare(a.b, b.b)
	}
	return 0
}

func cmpOrdered[T int64 | float64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// appendKey appends a key for v that is equal exactly for values Postgres
// considers equal (GROUP BY, DISTINCT): numeric ignores display scale,
// float -0 = 0, bpchar ignores trailing blanks.
func appendKey(dst []byte, v value) []byte {
	if v.null {
		return append(dst, 'N')
	}
	// 'V', a 4-byte length, then the value's bytes, written in place.
	dst = append(dst, 'V', 0, 0, 0, 0)
	start := len(dst)
	switch v.k {
	case kindInt, kindBool, kindTime:
		dst = strconv.AppendInt(dst, v.i, 10)
	case kindFloat:
		switch {
		case math.IsNaN(v.f):
			dst = append(dst, "NaN"...)
		case v.f == 0:
			dst = append(dst, '0')
		default:
			dst = strconv.AppendUint(dst, math.Float64bits(v.f), 16)
		}
	case kindNumeric:
		dst = append(dst, v.d.canonical()...)
	case kindBytes:
		dst = append(dst, v.b...)
	}
	binary.BigEndian.PutUint32(dst[start-4:], uint32(len(dst)-start))
	return dst
}

// isInfinity reports the spellings Postgres uses for infinite dates/times.
func infinityTime(s string) (int64, bool) {
	switch s {
	case "infinity":
		return math.MaxInt64, true
	case "-infinity":
		return math.MinInt64, true
	}
	return 0, false
}

// trimBC strips a trailing " BC" and reports it.
func trimBC(s string) (string, bool) {
	if strings.HasSuffix(s, " BC") {
		return s[:len(s)-3], true
	}
	return s, false
}

package merge

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"
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
		err = v.decodeText(c.oid, string(raw))
	}
	if err != nil {
		return value{}, fmt.Errorf("merge: column %q: %w", c.name, err)
	}
	return v, nil
}

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
		v.b = []byte(s)
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
	want := map[uint32]int{oidInt2: 2, oidInt4: 4, oidOID: 4, oidInt8: 8, oidFloat4: 4, oidFloat8: 8,
		oidBool: 1, oidDate: 4, oidTimestamp: 8, oidTimestamptz: 8, oidUUID: 16}[oid]
	if want != 0 && len(b) != want {
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
	dst = append(dst, 'V')
	var s []byte
	switch v.k {
	case kindInt, kindBool, kindTime:
		s = strconv.AppendInt(nil, v.i, 10)
	case kindFloat:
		switch {
		case math.IsNaN(v.f):
			s = []byte("NaN")
		case v.f == 0:
			s = []byte("0")
		default:
			s = strconv.AppendUint(nil, math.Float64bits(v.f), 16)
		}
	case kindNumeric:
		s = []byte(v.d.canonical())
	case kindBytes:
		s = v.b
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(s)))
	return append(dst, s...)
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

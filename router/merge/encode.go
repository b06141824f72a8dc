package merge

import (
	"encoding/binary"
	"math"
	"strconv"
	"strings"
)

// formatFloat prints f as Postgres's float8out/float4out do with
// extra_float_digits > 0 (the default, 1, and what drivers set): the
// shortest digits that read back exactly, in fixed notation when the decimal
// exponent is in [-4, DBL_DIG-1] (FLT_DIG-1 for float4), else d.ddde±XX.
func formatFloat(f float64, bits int) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	case f == 0:
		if math.Signbit(f) {
			return "-0"
		}
		return "0"
	}
	sci := strconv.FormatFloat(f, 'e', -1, bits) // -d.ddde±XX
	sign := ""
	if sci[0] == '-' {
		sign, sci = "-", sci[1:]
	}
	mant, expStr, _ := strings.Cut(sci, "e")
	exp, _ := strconv.Atoi(expStr)
	digits := strings.Replace(mant, ".", "", 1)
	maxFixed := 14 // DBL_DIG - 1
	if bits == 32 {
		maxFixed = 5 // FLT_DIG - 1
	}
	if exp < -4 || exp > maxFixed {
		m := digits[:1]
		if len(digits) > 1 {
			m += "." + digits[1:]
		}
		es := "+"
		if exp < 0 {
			es, exp = "-", -exp
		}
		e := strconv.Itoa(exp)
		if len(e) < 2 {
			e = "0" + e
		}
		return sign + m + "e" + es + e
	}
	if exp < 0 {
		return sign + "0." + strings.Repeat("0", -exp-1) + digits
	}
	if len(digits) <= exp+1 {
		return sign + digits + strings.Repeat("0", exp+1-len(digits))
	}
	return sign + digits[:exp+1] + "." + digits[exp+1:]
}

// formatFloatDigits prints f as float8out/float4out do under
// extra_float_digits = efd: shortest exact digits when efd > 0, else
// "%.*g" with DBL_DIG (FLT_DIG) + efd significant digits, at least 1.
func formatFloatDigits(f float64, bits, efd int) string {
	if efd > 0 || math.IsNaN(f) || math.IsInf(f, 0) {
		return formatFloat(f, bits)
	}
	ndig := 15 + efd // DBL_DIG
	if bits == 32 {
		ndig = 6 + efd // FLT_DIG
	}
	return strconv.FormatFloat(f, 'g', max(ndig, 1), bits)
}

// encodeValue encodes a computed result of type oid in the given format.
// Types come from aggregate results only: int8, numeric, float4/8, bool.
// efd is the client's extra_float_digits (see Options).
func encodeValue(v value, oid uint32, format int16, efd int) ([]byte, error) {
	if v.null {
		return nil, nil
	}
	if format == 1 {
		switch oid {
		case oidInt8:
			return binary.BigEndian.AppendUint64(nil, uint64(v.i)), nil
		case oidFloat8:
			return binary.BigEndian.AppendUint64(nil, math.Float64bits(v.f)), nil
		case oidFloat4:
			return binary.BigEndian.AppendUint32(nil, math.Float32bits(float32(v.f))), nil
		case oidBool:
			return []byte{byte(v.i)}, nil
		case oidNumeric:
			return appendNumericBinary(nil, v.d), nil
		}
	} else {
		switch oid {
		case oidInt8:
			return strconv.AppendInt(nil, v.i, 10), nil
		case oidFloat8:
			return []byte(formatFloatDigits(v.f, 64, efd)), nil
		case oidFloat4:
			return []byte(formatFloatDigits(v.f, 32, efd)), nil
		case oidBool:
			if v.i != 0 {
				return []byte("t"), nil
			}
			return []byte("f"), nil
		case oidNumeric:
			return []byte(v.d.String()), nil
		}
	}
	return nil, unsupported("aggregate result of type "+typeName(oid), "")
}

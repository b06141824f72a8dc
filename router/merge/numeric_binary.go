package merge

import (
	"encoding/binary"
	"fmt"
	"math/big"
)

// Postgres's numeric binary format (numeric_send): int16 ndigits, int16
// weight, uint16 sign, int16 dscale, then ndigits base-10000 digits, most
// significant first; the value is Σ digit[i] × 10000^(weight-i).
const (
	numericPos  = 0x0000
	numericNeg  = 0x4000
	numericNaN  = 0xC000
	numericPInf = 0xD000
	numericNInf = 0xF000
)

var bigNBase = big.NewInt(10000)

// parseNumericBinary reads a binary numeric into a decimal whose scale is
// the value's display scale, as the text form would have it.
func parseNumericBinary(b []byte) (*decimal, error) {
	if len(b) < 8 {
		return nil, fmt.Errorf("merge: binary numeric of %d bytes", len(b))
	}
	ndigits := int(binary.BigEndian.Uint16(b))
	weight := int(int16(binary.BigEndian.Uint16(b[2:])))
	sign := binary.BigEndian.Uint16(b[4:])
	dscale := int32(binary.BigEndian.Uint16(b[6:]))
	switch sign {
	case numericNaN:
		return &decimal{special: 'N'}, nil
	case numericPInf:
		return &decimal{special: '+'}, nil
	case numericNInf:
		return &decimal{special: '-'}, nil
	case numericPos, numericNeg:
	default:
		return nil, fmt.Errorf("merge: binary numeric with sign 0x%04x", sign)
	}
	if len(b) != 8+2*ndigits || dscale&0x3FFF != dscale {
		return nil, fmt.Errorf("merge: malformed binary numeric")
	}
	d := &decimal{scale: dscale}
	digit := new(big.Int)
	for i := 0; i < ndigits; i++ {
		d.u.Mul(&d.u, bigNBase)
		d.u.Add(&d.u, digit.SetInt64(int64(binary.BigEndian.Uint16(b[8+2*i:]))))
	}
	// The digits end at 10000^(weight-ndigits+1); the unscaled value is in
	// units of 10^-dscale. Digits past dscale are zero, so dividing is exact.
	if exp := 4*int32(weight-ndigits+1) + dscale; exp >= 0 {
		d.u.Mul(&d.u, pow10(exp))
	} else {
		d.u.Quo(&d.u, pow10(-exp))
	}
	if sign == numericNeg {
		d.u.Neg(&d.u)
	}
	return d, nil
}

// appendNumericBinary encodes d exactly as numeric_send would: no leading
// or trailing zero digits, zero as ndigits 0 and weight 0.
func appendNumericBinary(dst []byte, d *decimal) []byte {
	header := func(ndigits, weight int, sign uint16, dscale int32) []byte {
		dst = binary.BigEndian.AppendUint16(dst, uint16(ndigits))
		dst = binary.BigEndian.AppendUint16(dst, uint16(int16(weight)))
		dst = binary.BigEndian.AppendUint16(dst, sign)
		return binary.BigEndian.AppendUint16(dst, uint16(dscale))
	}
	switch d.special {
	case 'N':
		return header(0, 0, numericNaN, 0)
	// Postgres reads the display scale of ±Infinity out of its header
	// bits (NUMERIC_DSCALE of 0xD000/0xF000), which gives 32.
	case '+':
		return header(0, 0, numericPInf, 32)
	case '-':
		return header(0, 0, numericNInf, 32)
	}
	if d.u.Sign() == 0 {
		return header(0, 0, numericPos, d.scale)
	}
	// Align the fraction to whole base-10000 digits.
	fracDigits := (d.scale + 3) / 4
	u := new(big.Int).Abs(&d.u)
	u.Mul(u, pow10(4*fracDigits-d.scale))
	var digits []uint16 // least significant first
	r := new(big.Int)
	for u.Sign() > 0 {
		u.QuoRem(u, bigNBase, r)
		digits = append(digits, uint16(r.Int64()))
	}
	weight := len(digits) - 1 - int(fracDigits)
	low := 0
	for low < len(digits) && digits[low] == 0 {
		low++ // trailing zero digits are not sent
	}
	digits = digits[low:]
	sign := uint16(numericPos)
	if d.u.Sign() < 0 {
		sign = numericNeg
	}
	dst = header(len(digits), weight, sign, d.scale)
	for i := len(digits) - 1; i >= 0; i-- {
		dst = binary.BigEndian.AppendUint16(dst, digits[i])
	}
	return dst
}

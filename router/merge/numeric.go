package merge

import (
	"fmt"
	"math/big"
	"strings"
)

// decimal is a Postgres numeric: unscaled × 10^-scale, where scale is the
// display scale (digits after the point as Postgres prints them), or one of
// the special values NaN, +Infinity, -Infinity.
type decimal struct {
	special byte // 0 finite, 'N' NaN, '+' Infinity, '-' -Infinity
	u       big.Int
	scale   int32
}

var bigTen = big.NewInt(10)

func pow10(n int32) *big.Int {
	return new(big.Int).Exp(bigTen, big.NewInt(int64(n)), nil)
}

// parseNumeric reads numeric text output ("-12.340", "NaN", "Infinity").
func parseNumeric(s string) (*decimal, error) {
	d := &decimal{}
	switch s {
	case "NaN":
		d.special = 'N'
		return d, nil
	case "Infinity":
		d.special = '+'
		return d, nil
	case "-Infinity":
		d.special = '-'
		return d, nil
	}
	digits := s
	neg := strings.HasPrefix(digits, "-")
	digits = strings.TrimLeft(digits, "+-")
	if i := strings.IndexByte(digits, '.'); i >= 0 {
		d.scale = int32(len(digits) - i - 1)
		digits = digits[:i] + digits[i+1:]
	}
	if digits == "" {
		return nil, fmt.Errorf("merge: bad numeric %q", s)
	}
	if _, ok := d.u.SetString(digits, 10); !ok {
		return nil, fmt.Errorf("merge: bad numeric %q", s)
	}
	if neg {
		d.u.Neg(&d.u)
	}
	return d, nil
}

// decimalFromInt is an integer as numeric (scale 0).
func decimalFromInt(i int64) *decimal {
	d := &decimal{}
	d.u.SetInt64(i)
	return d
}

// String prints d as Postgres's numeric_out does.
func (d *decimal) String() string {
	switch d.special {
	case 'N':
		return "NaN"
	case '+':
		return "Infinity"
	case '-':
		return "-Infinity"
	}
	abs := new(big.Int).Abs(&d.u).String()
	if d.scale > 0 {
		if pad := int(d.scale) + 1 - len(abs); pad > 0 {
			abs = strings.Repeat("0", pad) + abs
		}
		abs = abs[:len(abs)-int(d.scale)] + "." + abs[len(abs)-int(d.scale):]
	}
	if d.u.Sign() < 0 {
		return "-" + abs
	}
	return abs
}

// align returns the unscaled values of a and b at their common scale.
func align(a, b *decimal) (x, y *big.Int, scale int32) {
	x, y, scale = &a.u, &b.u, a.scale
	switch {
	case a.scale < b.scale:
		x = new(big.Int).Mul(x, pow10(b.scale-a.scale))
		scale = b.scale
	case b.scale < a.scale:
		y = new(big.Int).Mul(y, pow10(a.scale-b.scale))
	}
	return x, y, scale
}

// add returns a+b with Postgres's rules: display scale is the larger one,
// NaN absorbs everything, Infinity + -Infinity is NaN.
func (d *decimal) add(o *decimal) *decimal {
	if d.special != 0 || o.special != 0 {
		switch {
		case d.special == 'N' || o.special == 'N':
			return &decimal{special: 'N'}
		case d.special != 0 && o.special != 0 && d.special != o.special:
			return &decimal{special: 'N'}
		case d.special != 0:
			return &decimal{special: d.special}
		default:
			return &decimal{special: o.special}
		}
	}
	x, y, scale := align(d, o)
	r := &decimal{scale: scale}
	r.u.Add(x, y)
	return r
}

// cmp orders numerics as Postgres does: -Infinity < finite < Infinity < NaN,
// and NaN equals NaN.
func (d *decimal) cmp(o *decimal) int {
	rank := func(x *decimal) int {
		switch x.special {
		case '-':
			return 0
		case '+':
			return 2
		case 'N':
			return 3
		}
		return 1
	}
	if ra, rb := rank(d), rank(o); ra != rb || ra != 1 {
		return ra - rb
	}
	x, y, _ := align(d, o)
	return x.Cmp(y)
}

// canonical is a key equal for equal values whatever their display scale
// (1.0 = 1.00 in GROUP BY and DISTINCT).
func (d *decimal) canonical() string {
	if d.special != 0 {
		return string(d.special)
	}
	if d.u.Sign() == 0 {
		return "0"
	}
	u, scale := new(big.Int).Set(&d.u), d.scale
	q, r := new(big.Int), new(big.Int)
	for scale > 0 {
		q.QuoRem(u, bigTen, r)
		if r.Sign() != 0 {
			break
		}
		u.Set(q)
		scale--
	}
	return fmt.Sprintf("%se%d", u.String(), -scale)
}

// nbaseWeight returns the weight and value of the first non-zero base-10000
// digit of |d| (Postgres stores numerics in base 10000 with digit groups
// aligned at the decimal point); 0, 0 for zero.
func (d *decimal) nbaseWeight() (weight int, first int64) {
	if d.u.Sign() == 0 {
		return 0, 0
	}
	abs := new(big.Int).Abs(&d.u)
	exp := len(abs.String()) - 1 - int(d.scale) // decimal exponent of the first digit
	weight = exp / 4
	if exp < 0 && exp%4 != 0 {
		weight-- // floor division
	}
	shift := int32(int(d.scale) + 4*weight) // |d| / 10000^weight = abs / 10^shift
	var q *big.Int
	if shift >= 0 {
		q = new(big.Int).Quo(abs, pow10(shift))
	} else {
		q = new(big.Int).Mul(abs, pow10(-shift))
	}
	return weight, q.Int64()
}

// divScale is Postgres's select_div_scale: at least 16 significant digits,
// no less than either input's display scale, within [0, 1000].
func divScale(a, b *decimal) int32 {
	w1, f1 := a.nbaseWeight()
	w2, f2 := b.nbaseWeight()
	qweight := w1 - w2
	if f1 <= f2 {
		qweight--
	}
	rscale := int32(16 - qweight*4)
	rscale = max(rscale, a.scale, b.scale, 0)
	return min(rscale, 1000)
}

// divCount returns sum / n as Postgres's numeric_div does (n > 0): scale
// from divScale, rounded half away from zero.
func (d *decimal) divCount(n int64) *decimal {
	if d.special != 0 {
		return &decimal{special: d.special}
	}
	cnt := decimalFromInt(n)
	rscale := divScale(d, cnt)
	num := new(big.Int).Abs(&d.u)
	num.Mul(num, pow10(rscale))
	den := new(big.Int).Mul(big.NewInt(n), pow10(d.scale))
	q, r := new(big.Int).QuoRem(num, den, new(big.Int))
	if r.Lsh(r, 1).Cmp(den) >= 0 {
		q.Add(q, big.NewInt(1))
	}
	if d.u.Sign() < 0 {
		q.Neg(q)
	}
	res := &decimal{scale: rscale}
	res.u.Set(q)
	return res
}

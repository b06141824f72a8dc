package merge

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"
)

// TestAvgDisplayScaleMatchesPostgres checks the engine's final avg (numeric
// sum / count) against Postgres's numeric division for sums of many
// magnitudes and scales.
func TestAvgDisplayScaleMatchesPostgres(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn := connect(ctx, t, "public")
	sums := []string{"0", "1", "-1", "10", "7", "9999", "10000", "-123456789", "123456789012345678901234567890",
		"0.5", "1.125", "0.0001", "0.00001234", "-0.333", "99999.99", "12345.6789", "1e-20", "5000.00000"}
	counts := []int64{1, 2, 3, 4, 7, 9, 10, 11, 13, 9999, 10000, 10001, 123456789}
	checked := 0
	for _, s := range sums {
		sum, err := literalDecimal(s)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range counts {
			q := fmt.Sprintf("select (%s::numeric / %d::numeric)::text", sum.String(), n)
			res, err := query(ctx, conn, q, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			cells, _ := splitRow(res.rows[0], nil)
			if got := sum.divCount(n).String(); got != string(cells[0]) {
				t.Errorf("%s / %d: engine %s, Postgres %s", sum, n, got, cells[0])
			}
			checked++
		}
	}
	if checked != len(sums)*len(counts) {
		t.Fatalf("checked %d", checked)
	}
}

// TestFloatTextMatchesPostgres checks formatFloat against float8out and
// float4out.
func TestFloatTextMatchesPostgres(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn := connect(ctx, t, "public")
	values := []float64{0, math.Copysign(0, -1), 1, -1, 0.1, 1.0 / 3, 2.0 / 3, 1e15, 1e14, 123456789012345,
		1234567890123456, 1e-4, 1e-5, 1.5e-5, 123.456, 1e21, 1e100, 5e-324, math.MaxFloat64, 100, 1e6, 999999,
		1234567, 0.000123, 3.14159, math.Inf(1), math.Inf(-1), math.NaN(), 65536.5, 1e5}
	for _, v := range values {
		for _, bits := range []int{64, 32} {
			typ := "float8"
			if bits == 32 {
				typ = "float4"
				if math.Abs(v) > math.MaxFloat32 && !math.IsInf(v, 0) || (v != 0 && math.Abs(v) < 1e-38) {
					continue
				}
			}
			lit := formatFloat(v, 64)
			res, err := query(ctx, conn, fmt.Sprintf("select '%s'::%s::text", lit, typ), nil, nil)
			if err != nil {
				t.Fatalf("%s: %v", lit, err)
			}
			cells, _ := splitRow(res.rows[0], nil)
			f := v
			if bits == 32 {
				f = float64(float32(v))
			}
			if got := formatFloat(f, bits); got != string(cells[0]) {
				t.Errorf("%s %s: engine %s, Postgres %s", typ, lit, got, cells[0])
			}
		}
	}
}

// TestBinaryNumericMatchesPostgres checks that the engine reads numeric_send
// output as the text form's value and display scale, and encodes it back to
// the very bytes Postgres sends.
func TestBinaryNumericMatchesPostgres(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn := connect(ctx, t, "public")
	values := []string{"0", "0.00", "1", "-1", "10000", "9999", "-10000.0001", "0.0001", "0.00001234", "1.5", "-0.333",
		"123456789012345678901234567890.123456789", "1e-20", "5000.00000", "100000000", "12345.6789", "-99999.99",
		"0.1000", "NaN", "Infinity", "-Infinity"}
	for _, s := range values {
		res, err := query(ctx, conn, fmt.Sprintf("select '%s'::numeric, '%s'::numeric::text", s, s), nil, []int16{1, 0})
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		cells, _ := splitRow(res.rows[0], nil)
		d, err := parseNumericBinary(cells[0])
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if d.String() != string(cells[1]) {
			t.Errorf("%s: decoded %s, Postgres prints %s", s, d, cells[1])
		}
		if enc := appendNumericBinary(nil, d); string(enc) != string(cells[0]) {
			t.Errorf("%s: encoded % x, Postgres sends % x", s, enc, cells[0])
		}
	}
}

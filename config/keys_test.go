package config

import "testing"

func TestParseKey(t *testing.T) {
	cases := []struct {
		typ, in, canon string
		ok             bool
	}{
		{KeyInt, "42", "42", true},
		{KeyInt, " -007 ", "-7", true},
		{KeyInt, "9223372036854775807", "9223372036854775807", true},
		{KeyInt, "9223372036854775808", "", false},
		{KeyInt, "1.5", "", false},
		{KeyText, "Ünïcode", "Ünïcode", true},
		{KeyUUID, "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", true},
		{KeyUUID, "{a0eebc999c0b4ef8bb6d6bb9bd380a11}", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", true},
		{KeyUUID, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1", "", false},
		{KeyUUID, "-a0eebc999c0b4ef8bb6d6bb9bd380a11", "", false},
		{KeyUUID, "g0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "", false},
		{"float", "1", "", false},
	}
	for _, c := range cases {
		k, err := ParseKey(c.typ, c.in)
		if (err == nil) != c.ok {
			t.Errorf("ParseKey(%s, %q): err = %v, want ok=%v", c.typ, c.in, err, c.ok)
			continue
		}
		if c.ok && k.String() != c.canon {
			t.Errorf("ParseKey(%s, %q).String() = %q, want %q", c.typ, c.in, k.String(), c.canon)
		}
	}
}

func TestKeyCompare(t *testing.T) {
	cases := []struct {
		typ, a, b string
		want      int
	}{
		{KeyInt, "9", "10", -1}, // numeric, not lexical
		{KeyInt, "-5", "-5", 0},
		{KeyText, "b", "a", 1},
		{KeyText, "Z", "a", -1}, // byte-wise (C collation)
		{KeyUUID, "00000000-0000-0000-0000-000000000001", "10000000-0000-0000-0000-000000000000", -1},
	}
	for _, c := range cases {
		a, _ := ParseKey(c.typ, c.a)
		b, _ := ParseKey(c.typ, c.b)
		if got := a.Compare(b); got != c.want {
			t.Errorf("Compare(%s %q, %q) = %d, want %d", c.typ, c.a, c.b, got, c.want)
		}
	}
}

func TestErrorFormatting(t *testing.T) {
	cases := []struct {
		e    Error
		want string
	}{
		{Error{File: "f.yaml", Line: 3, Key: "a.b", Msg: "bad"}, "f.yaml:3: a.b: bad"},
		{Error{File: "f.yaml", Msg: "empty"}, "f.yaml: empty"},
		{Error{Key: "a", Msg: "bad"}, "a: bad"},
		{Error{Line: 2, Msg: "bad"}, "line 2: bad"},
	}
	for _, c := range cases {
		if got := c.e.Error(); got != c.want {
			t.Errorf("got %q, want %q", got, c.want)
		}
	}
	es := Errors{&cases[0].e, &cases[1].e}
	if got := es.Error(); got != "f.yaml:3: a.b: bad\nf.yaml: empty" {
		t.Errorf("Errors.Error() = %q", got)
	}
}

package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// hashShards is a config whose four shards carry the given hash lines
// (line numbers: shard i's hash is on line 7+3i).
func hashShards(h0, h1, h2, h3 string) string {
	var b strings.Builder
	b.WriteString("users:\n  - name: app\n    password: pw\nshards:\n")
	for i, h := range []string{h0, h1, h2, h3} {
		fmt.Fprintf(&b, "  - name: s%d\n    primary: 127.0.0.1:%d\n", i, 5432+i)
		if h != "-" {
			fmt.Fprintf(&b, "    hash: %s\n", h)
		} else {
			b.WriteString("    # no hash\n")
		}
	}
	b.WriteString("databases:\n  - name: app\n")
	return b.String()
}

func TestHashSlotsValid(t *testing.T) {
	cfg, err := Parse([]byte(hashShards("[{modulus: 4, remainder: 0}]", "[{modulus: 2, remainder: 1}]",
		"[{modulus: 4, remainder: 2}]", "[]")), "p.yaml")
	if err != nil {
		t.Fatal(err)
	}
	got := cfg.HashSlots()
	want := [][]HashSlot{{{4, 0}}, {{2, 1}}, {{4, 2}}, {}}
	if fmt.Sprint(got) != fmt.Sprint(want) || cfg.Shards[3].Hash == nil {
		t.Fatalf("slots %v (spare nil: %v), want %v", got, cfg.Shards[3].Hash == nil, want)
	}
	if m := HashModulus(got); m != 4 {
		t.Fatalf("modulus %d", m)
	}
	def, err := Parse([]byte(baseTwoShards), "d.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(def.HashSlots()) != "[[{2 0}] [{2 1}]]" || def.CustomHash() {
		t.Fatalf("default slots %v", def.HashSlots())
	}
}

func TestHashSlotErrors(t *testing.T) {
	cases := []struct {
		name, yml string
		line      int
		key, msg  string
	}{
		{"gap", hashShards("[{modulus: 4, remainder: 0}]", "[{modulus: 2, remainder: 1}]", "[]", "[]"), 4, "shards",
			"remainders 2 of modulus 4 belong to no shard"},
		{"overlap", hashShards("[{modulus: 2, remainder: 0}]", "[{modulus: 2, remainder: 1}]", "[{modulus: 4, remainder: 2}]", "[]"), 13, "shards[2].hash[0]",
			"overlaps the slot at line 7"},
		{"moduli not a chain", hashShards("[{modulus: 2, remainder: 0}]", "[{modulus: 3, remainder: 1}]", "[]", "[]"), 10, "shards[1].hash[0].modulus",
			"modulus 3 is not a multiple of modulus 2"},
		{"remainder too big", hashShards("[{modulus: 2, remainder: 2}]", "[{modulus: 2, remainder: 1}]", "[]", "[]"), 7, "shards[0].hash[0].remainder",
			"below the modulus 2"},
		{"modulus zero", hashShards("[{modulus: 0, remainder: 0}]", "[{modulus: 2, remainder: 1}]", "[]", "[]"), 7, "shards[0].hash[0].modulus",
			"between 1 and 65536"},
		{"missing on one shard", hashShards("[{modulus: 2, remainder: 0}]", "[{modulus: 2, remainder: 1}]", "[]", "-"), 14, "shards[3]",
			"every shard must"},
		{"same slot twice", hashShards("[{modulus: 2, remainder: 0}]", "[{modulus: 2, remainder: 1}, {modulus: 2, remainder: 0}]", "[]", "[]"), 10, "shards[1].hash[1]",
			"overlaps the slot at line 7"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yml), "p.yaml")
			var es Errors
			if !errors.As(err, &es) || len(es) == 0 {
				t.Fatalf("want errors, got %v", err)
			}
			for _, e := range es {
				if strings.HasPrefix(e.Key, tc.key) && strings.Contains(e.Msg, tc.msg) {
					if e.Line != tc.line || !strings.HasPrefix(e.Error(), fmt.Sprintf("p.yaml:%d: ", tc.line)) {
						t.Fatalf("line %d (%s), want %d", e.Line, e.Error(), tc.line)
					}
					return
				}
			}
			t.Fatalf("no error at %s containing %q; got:\n%v", tc.key, tc.msg, err)
		})
	}
}

func TestPlacementChange(t *testing.T) {
	base, _ := Parse([]byte(baseTwoShards), "a.yaml")
	spare := hashShards("[{modulus: 2, remainder: 0}]", "[{modulus: 2, remainder: 1}]", "[]", "[]")
	withSpare, err := Parse([]byte(spare), "b.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := PlacementChange(base, withSpare); err != nil {
		t.Fatalf("appending spares moved rows: %v", err)
	}
	split, err := Parse([]byte(hashShards("[{modulus: 4, remainder: 0}]", "[{modulus: 2, remainder: 1}]", "[{modulus: 4, remainder: 2}]", "[]")), "c.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := PlacementChange(withSpare, split); err == nil || !strings.Contains(err.Error(), "hash slots of shard s0") {
		t.Fatalf("split not seen: %v", err)
	}
	if err := PlacementChange(withSpare, base); err == nil {
		t.Fatal("removing shards is not a change?")
	}
}

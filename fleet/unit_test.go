package fleet

import (
	"strings"
	"testing"
	"time"

	"github.com/pgrouter/pgrouter/config"
)

func TestParseURL(t *testing.T) {
	eps, prefix, err := ParseURL("etcd://a:2379,b:2379/team/pgrouter/")
	if err != nil || strings.Join(eps, " ") != "http://a:2379 http://b:2379" || prefix != "/team/pgrouter" {
		t.Fatalf("got %v %q %v", eps, prefix, err)
	}
	if _, prefix, _ := ParseURL("etcd://a:2379"); prefix != DefaultPrefix {
		t.Fatalf("default prefix: %q", prefix)
	}
	for _, bad := range []string{"http://a:2379/p", "etcd:///p", "etcd://a:2379,,b:1/p", "pgrouter.yaml"} {
		if _, _, err := ParseURL(bad); err == nil {
			t.Errorf("ParseURL(%q) accepted", bad)
		}
	}
}

// TestShareSumsToBudget: the shares of any member set add up to the budget
// exactly, and differ by at most one.
func TestShareSumsToBudget(t *testing.T) {
	ids := []string{"a", "b", "c", "d", "e", "f", "g"}
	for budget := 0; budget <= 40; budget++ {
		for n := 1; n <= len(ids); n++ {
			sum, lo, hi := 0, budget, 0
			for _, id := range ids[:n] {
				s := share(budget, ids[:n], id)
				sum += s
				lo, hi = min(lo, s), max(hi, s)
			}
			if sum != budget || hi-lo > 1 {
				t.Fatalf("budget %d over %d members: sum %d, shares %d..%d", budget, n, sum, lo, hi)
			}
		}
	}
	if share(10, []string{"a"}, "x") != 0 {
		t.Fatal("a non-member got a share")
	}
}

func TestJudge(t *testing.T) {
	live := []Member{{ID: "a"}, {ID: "b"}}
	acks := map[string]ack{"a": {OK: true}}
	if p, waiting := judge([]string{"a", "b"}, acks, live, false); len(p) != 0 || !waiting {
		t.Fatalf("b may still answer: %v %v", p, waiting)
	}
	p, waiting := judge([]string{"a", "b", "c"}, map[string]ack{"a": {OK: true}, "b": {Err: "boom"}}, live, false)
	if waiting || len(p) != 2 || !strings.Contains(p[0], "b failed: boom") || !strings.Contains(p[1], "c left the fleet") {
		t.Fatalf("got %v %v", p, waiting)
	}
	if p, _ := judge([]string{"a", "b"}, acks, live, true); len(p) != 1 || !strings.Contains(p[0], "b did not acknowledge in time") {
		t.Fatalf("late: %v", p)
	}
}

func TestMemberID(t *testing.T) {
	if got := memberID("10.0.0.5:6432"); got != "10.0.0.5:6432" {
		t.Fatal(got)
	}
	if got := memberID("0.0.0.0:6432"); strings.HasPrefix(got, "0.0.0.0") || !strings.HasSuffix(got, ":6432") {
		t.Fatalf("unspecified host kept: %s", got)
	}
}

// TestFenceTimeline: for any lease TTL a member renews at least twice
// before its fence deadline, and a fence that takes its whole bound ends
// before a survivor may grow into its share (lease expiry + grace).
func TestFenceTimeline(t *testing.T) {
	for ttl := time.Second; ttl <= time.Minute; ttl += 500 * time.Millisecond {
		if fenceAfter(ttl) < 2*renewEvery(ttl) {
			t.Errorf("ttl %s: fence after %s, renewals every %s", ttl, fenceAfter(ttl), renewEvery(ttl))
		}
		if fenceAfter(ttl)+fenceBound > ttl+fenceGrace {
			t.Errorf("ttl %s: a fence may end at %s, after the grace ends at %s", ttl, fenceAfter(ttl)+fenceBound, ttl+fenceGrace)
		}
	}
}

// TestRenewalsOutOfOrder: a slow answer to an older keepalive does not move
// the last renewal back.
func TestRenewalsOutOfOrder(t *testing.T) {
	f := &Fleet{started: time.Now()}
	f.noteRenewed(5 * time.Second)
	f.noteRenewed(3 * time.Second)
	if got := time.Duration(f.renewedAt.Load()); got != 5*time.Second {
		t.Fatalf("last renewal sent at %s, want 5s", got)
	}
}

// TestGraceCountsFromFirstSight: an entry without a record is kept until
// this member has seen it missing for fenceGrace.
func TestGraceCountsFromFirstSight(t *testing.T) {
	f := &Fleet{gone: map[string]time.Time{}}
	t0 := time.Now()
	for _, c := range []struct {
		at   time.Duration
		over bool
	}{{0, false}, {fenceGrace - time.Millisecond, false}, {fenceGrace, true}} {
		if got := f.graceOver("m", t0.Add(c.at)); got != c.over {
			t.Errorf("at %s: grace over %t, want %t", c.at, got, c.over)
		}
	}
}

// TestReshardMarks: a member marks the copies until it runs the version
// that switched the reshard, the leftovers once it does (and from the
// clean-up on whatever it runs), nothing once the reshard is over.
func TestReshardMarks(t *testing.T) {
	for _, c := range []struct {
		phase             string
		version, applied  int64
		copies, leftovers bool
	}{
		{PhaseCopy, 0, 5, true, false},
		{PhaseCutover, 0, 5, true, false},
		{PhaseCleanup, 6, 5, true, true}, // published, not yet applied here
		{PhaseCleanup, 6, 6, false, true},
		{PhaseCleanup, 6, 7, false, true},
		{PhaseDone, 6, 6, false, false},
		{PhaseAborted, 0, 5, false, false},
	} {
		r := &Reshard{Phase: c.phase, Version: c.version}
		if copies, leftovers := r.marks(c.applied, false); copies != c.copies || leftovers != c.leftovers {
			t.Errorf("phase %s, version %d, member on %d: copies %v leftovers %v, want %v %v",
				c.phase, c.version, c.applied, copies, leftovers, c.copies, c.leftovers)
		}
	}
}

// TestDirectoryReshardMarks: a directory reshard (its moves carry keys)
// switches a member when the lookup table is pointed and the member
// dropped its cached mappings, whatever config version it runs.
func TestDirectoryReshardMarks(t *testing.T) {
	moves := []MoveRef{{Database: "app", Table: "t", From: "s0", To: "s1", Keys: []string{"7"}}}
	for _, c := range []struct {
		phase                string
		pointed, pointedHere bool
		copies, leftovers    bool
	}{
		{PhaseCopy, false, false, true, false},
		{PhaseCutover, false, false, true, false},
		{PhaseCleanup, true, false, true, true}, // pointed, this member's cache not dropped yet
		{PhaseCleanup, true, true, false, true},
		{PhaseDone, true, true, false, false},
		{PhaseAborted, false, false, false, false},
	} {
		r := &Reshard{Phase: c.phase, Pointed: c.pointed, Moves: moves}
		if !r.directory() || r.published() != c.pointed {
			t.Fatalf("directory %v published %v", r.directory(), r.published())
		}
		if copies, leftovers := r.marks(99, c.pointedHere); copies != c.copies || leftovers != c.leftovers {
			t.Errorf("phase %s, pointed %v, here %v: copies %v leftovers %v, want %v %v",
				c.phase, c.pointed, c.pointedHere, copies, leftovers, c.copies, c.leftovers)
		}
	}
}

// TestSwitchedBy: applying a version moves the rows of the reshard that
// a version after the running one, up to it, switched (not an aborted one).
func TestSwitchedBy(t *testing.T) {
	recs := map[string]*Reshard{
		"a": {ID: "a", Phase: PhaseDone, Version: 3},
		"b": {ID: "b", Phase: PhaseCleanup, Version: 6},
		"c": {ID: "c", Phase: PhaseCopy},
	}
	for _, c := range []struct {
		applied, v int64
		want       string
	}{{2, 3, "a"}, {3, 5, ""}, {5, 6, "b"}, {5, 9, "b"}, {6, 9, ""}} {
		if got := switchedBy(recs, c.applied, c.v); got != c.want {
			t.Errorf("from %d to %d: %q, want %q", c.applied, c.v, got, c.want)
		}
	}
}

// TestSameMoves: a reshard's version is accepted as its switch only when
// it moves exactly the reshard's rows.
func TestSameMoves(t *testing.T) {
	placement := func(h0, h2 string) *config.Config {
		cfg, err := config.Parse([]byte(`users: [{name: app, password: pw}]
shards:
  - {name: s0, primary: "127.0.0.1:1", hash: `+h0+`}
  - {name: s1, primary: "127.0.0.1:2", hash: [{modulus: 2, remainder: 1}]}
  - {name: s2, primary: "127.0.0.1:3", hash: `+h2+`}
databases:
  - name: app
    sharded_tables: [{table: kv, column: id, type: int, function: hash}]
`), "moves.yaml")
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	cur, next := placement("[{modulus: 2, remainder: 0}]", "[]"), placement("[{modulus: 4, remainder: 0}]", "[{modulus: 4, remainder: 2}]")
	r := &Reshard{ID: "r1", Moves: []MoveRef{{Database: "app", Table: "kv", From: "s0", To: "s2"}}}
	if err := sameMoves(cur, next, r); err != nil {
		t.Fatalf("the reshard's own moves: %v", err)
	}
	if err := sameMoves(cur, cur, r); err == nil || !strings.Contains(err.Error(), "which it does not") {
		t.Fatalf("a version that moves nothing: %v", err)
	}
	other := &Reshard{ID: "r2", Moves: []MoveRef{{Database: "app", Table: "kv", From: "s1", To: "s2"}}}
	if err := sameMoves(cur, next, other); err == nil || !strings.Contains(err.Error(), "which reshard r2 does not") {
		t.Fatalf("a version that moves other rows: %v", err)
	}
}

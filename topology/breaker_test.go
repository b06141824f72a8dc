package topology

import (
	"errors"
	"testing"
	"time"
)

// TestBreakerLifecycle: a tripped replica takes no reads; a successful check
// inside the cool-down does not close the breaker, one after it does (the
// half-open probe); a failure soon after closing (flapping) doubles the
// cool-down up to the maximum, a failed probe does not grow it.
func TestBreakerLifecycle(t *testing.T) {
	snap := newOffline(t, offlineConfig(StrategyRoundRobin, 1, 1))
	r1 := snap.Node("r1")
	const base, maxCool = 40 * time.Millisecond, 150 * time.Millisecond

	cool, opened := r1.trip(base, maxCool)
	if !opened || cool != base || !r1.Banned() || r1.BreakerState() != BreakerOpen {
		t.Fatalf("first trip: cool %v opened %v banned %v state %v", cool, opened, r1.Banned(), r1.BreakerState())
	}
	for range 10 {
		if n, _, _ := snap.Replica(0, Floor{}); n == r1 {
			t.Fatal("a read went to a replica whose breaker is open")
		}
	}
	if _, again := r1.trip(base, maxCool); again {
		t.Error("a trip during the cool-down reported a new opening")
	}
	if r1.probeSucceeded() {
		t.Error("a check inside the cool-down closed the breaker")
	}
	time.Sleep(base + 10*time.Millisecond)
	if r1.BreakerState() != BreakerHalfOpen {
		t.Errorf("after the cool-down: state %v, want half_open", r1.BreakerState())
	}
	if cool, _ := r1.trip(base, maxCool); cool != base {
		t.Errorf("failed probe of a long outage: cool-down %v, want it unchanged (%v)", cool, base)
	}
	time.Sleep(base + 10*time.Millisecond)
	if !r1.probeSucceeded() || r1.Banned() || r1.BreakerState() != BreakerClosed {
		t.Fatalf("probe after the cool-down: banned %v state %v, want closed", r1.Banned(), r1.BreakerState())
	}
	// Flapping: each reopening soon after a close doubles the cool-down.
	// 4×base is over maxCool.
	for _, want := range []time.Duration{2 * base, maxCool, maxCool} {
		cool, _ := r1.trip(base, maxCool)
		if cool != want {
			t.Errorf("reopened right after closing: cool-down %v, want %v", cool, want)
		}
		r1.closeBreaker()
	}
	opened2, closed := r1.BreakerTransitions()
	if opened2 != 4 || closed != 4 {
		t.Errorf("transitions: opened %d closed %d, want 4 and 4", opened2, closed)
	}
}

// TestTripReplicaLeavesPrimary: the proxy's failed dial opens a replica's
// breaker but never the primary's (writes have nowhere else to go).
func TestTripReplicaLeavesPrimary(t *testing.T) {
	cfg := offlineConfig(StrategyRoundRobin, 1)
	topo, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(topo.Close)
	snap := topo.Snapshot()
	markChecked(snap.Node("p"), RolePrimary, 100)
	markChecked(snap.Node("r1"), RoleReplica, 100)
	cause := errors.New("dial failed")
	topo.TripReplica(snap.Node("p"), cause)
	topo.TripReplica(snap.Node("r1"), cause)
	if snap.Node("p").Banned() {
		t.Error("TripReplica opened the primary's breaker")
	}
	if !snap.Node("r1").Banned() || snap.Node("r1").DialRetries() != 1 {
		t.Errorf("replica: banned %v retries %d, want banned and 1", snap.Node("r1").Banned(), snap.Node("r1").DialRetries())
	}
	if n, reason, err := snap.Replica(0, Floor{}); err != nil || n.Name != "p" || reason != ReasonLagFallback {
		t.Errorf("read with the only replica's breaker open: %v %q %v, want the primary (lag_fallback)", n, reason, err)
	}
}

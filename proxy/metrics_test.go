package proxy

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// The per-query metric calls run on every round trip: once a label set has
// been seen they must not allocate.
func TestMetricsHotPathAllocs(t *testing.T) {
	m := NewMetrics()
	m.routed("s0", "replica", kindSingle, "replica")
	m.observeQuery("s0", false, time.Millisecond)
	allocs := testing.AllocsPerRun(1000, func() {
		m.routed("s0", "replica", kindSingle, "replica")
		m.observeQuery("s0", false, time.Millisecond)
		m.poolWait(time.Microsecond)
	})
	if allocs != 0 {
		t.Fatalf("hot path allocates %.1f times per query", allocs)
	}
}

func TestMetricsRoutedCounts(t *testing.T) {
	m := NewMetrics()
	for i := 0; i < 3; i++ {
		m.routed("s0", "primary", kindSingle, "primary")
	}
	m.routedMulti("s1", "replica", "replica", false)
	m.routedMulti("s1", "replica", "replica", true)
	m.observeQuery("s1", true, 2*time.Second)
	for _, c := range []struct {
		got  float64
		want float64
	}{
		{counterValue(t, m.queries.WithLabelValues("s0", "primary", kindSingle)), 3},
		{counterValue(t, m.queries.WithLabelValues("s1", "replica", kindMulti)), 1},
		{counterValue(t, m.queries.WithLabelValues("s1", "replica", kindBroadcast)), 1},
		{counterValue(t, m.decisions.WithLabelValues("primary")), 3},
		{counterValue(t, m.decisions.WithLabelValues("replica")), 2},
	} {
		if c.got != c.want {
			t.Errorf("got %v, want %v", c.got, c.want)
		}
	}
	var h dto.Metric
	if err := m.duration.WithLabelValues("s1", "primary").(prometheus.Metric).Write(&h); err != nil {
		t.Fatal(err)
	}
	if h.GetHistogram().GetSampleCount() != 1 || h.GetHistogram().GetSampleSum() != 2 {
		t.Errorf("duration{s1,primary} = %v", h.GetHistogram())
	}
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// The pool wait histogram must place a p99 of a few hundred ms within a
// factor √2: each bucket bound at most 1.5× the one below, 50 µs to 10 s.
func TestPoolWaitBucketsAreFine(t *testing.T) {
	if waitBuckets[0] > 50e-6 || waitBuckets[len(waitBuckets)-1] < 10 {
		t.Fatalf("buckets span %g..%g s, want 50 µs..10 s", waitBuckets[0], waitBuckets[len(waitBuckets)-1])
	}
	for i := 1; i < len(waitBuckets); i++ {
		if r := waitBuckets[i] / waitBuckets[i-1]; r > 1.5 {
			t.Fatalf("bucket %g s is %.2f× the one below it", waitBuckets[i], r)
		}
	}
}

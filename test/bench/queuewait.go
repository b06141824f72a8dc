package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// waitHistogram is pgrouter's pgrouter_pool_wait_seconds as scraped:
// cumulative counts per upper bound (seconds), +Inf last.
type waitHistogram struct {
	bounds []float64
	counts []float64
}

const waitMetric = "pgrouter_pool_wait_seconds_bucket"

// scrapeWait reads the pool wait histogram from a pgrouter's /metrics.
func scrapeWait(ctx context.Context, url string) (waitHistogram, error) {
	var h waitHistogram
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return h, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return h, err
	}
	defer resp.Body.Close()
	return parseWait(resp.Body)
}

// parseWait picks the wait histogram's buckets out of the text exposition format.
func parseWait(r io.Reader) (waitHistogram, error) {
	var h waitHistogram
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, waitMetric+"{") {
			continue
		}
		_, rest, _ := strings.Cut(line, `le="`)
		le, value, ok := strings.Cut(rest, `"} `)
		if !ok {
			return h, fmt.Errorf("unexpected metrics line %q", line)
		}
		bound, err1 := strconv.ParseFloat(le, 64) // "+Inf" parses as +Inf
		count, err2 := strconv.ParseFloat(strings.Fields(value)[0], 64)
		if err1 != nil || err2 != nil {
			return h, fmt.Errorf("unexpected metrics line %q", line)
		}
		h.bounds, h.counts = append(h.bounds, bound), append(h.counts, count)
	}
	if len(h.bounds) == 0 {
		return h, fmt.Errorf("no %s in the metrics", waitMetric)
	}
	return h, sc.Err()
}

// since is the histogram of what happened after before was scraped.
func (h waitHistogram) since(before waitHistogram) waitHistogram {
	out := waitHistogram{bounds: h.bounds, counts: slices.Clone(h.counts)}
	if slices.Equal(h.bounds, before.bounds) {
		for i := range out.counts {
			out.counts[i] -= before.counts[i]
		}
	}
	return out
}

// total is the number of observations.
func (h waitHistogram) total() float64 {
	if len(h.counts) == 0 {
		return 0
	}
	return h.counts[len(h.counts)-1]
}

// quantile estimates the q-quantile the way Prometheus's histogram_quantile
// does: linear interpolation inside the bucket that holds it. A quantile in
// the +Inf bucket is reported as the largest finite bound.
func (h waitHistogram) quantile(q float64) time.Duration {
	n := h.total()
	if n == 0 {
		return 0
	}
	rank := q * n
	lower, below := 0.0, 0.0
	for i, bound := range h.bounds {
		if h.counts[i] >= rank {
			if math.IsInf(bound, 1) {
				return secs(lower)
			}
			inBucket := h.counts[i] - below
			frac := 1.0
			if inBucket > 0 {
				frac = (rank - below) / inBucket
			}
			return secs(lower + (bound-lower)*frac)
		}
		lower, below = bound, h.counts[i]
	}
	return secs(lower)
}

func secs(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

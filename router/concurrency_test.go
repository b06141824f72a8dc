package router

import (
	"strconv"
	"sync"
	"testing"
)

// TestConcurrentRouting shares one Router between goroutines (run with -race):
// plans are immutable and the cache is safe for concurrent use.
func TestConcurrentRouting(t *testing.T) {
	r := testRouter(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var sc Scratch
			for i := 0; i < 200; i++ {
				id := strconv.Itoa(i % 3000)
				_, rt, err := r.RouteSimple("SELECT * FROM events WHERE id = "+id, Session{}, &sc)
				want := Only(0)
				if i%3000 >= 1000 {
					want = Only(1)
				}
				if err != nil || rt.Shards != want {
					errs <- err
					return
				}
				p, _ := r.Prepare("UPDATE events SET v = $2 WHERE id = $1")
				if p.NumParams != 2 {
					t.Errorf("NumParams = %d", p.NumParams)
				}
				if _, err := r.Route(p, Args{Params: [][]byte{[]byte(id), nil}}, Session{}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent route failed: %v", err)
	}
}

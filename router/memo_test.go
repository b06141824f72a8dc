package router

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"unsafe"
)

func TestMemoBuildsOncePerText(t *testing.T) {
	var m Memo
	var builds atomic.Int32
	build := func(text string) (any, error) {
		builds.Add(1)
		return "plan of " + text, nil
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				v, err := m.Get("select 1", build)
				if err != nil || v != "plan of select 1" {
					t.Errorf("Get = %v, %v", v, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	// Concurrent first calls may each build; after that every call hits.
	if n := builds.Load(); n < 1 || n > 8 {
		t.Fatalf("built %d times for 800 calls of one text, want 1..8", n)
	}
	before := builds.Load()
	if v, _ := m.Get("select 2", build); v != "plan of select 2" {
		t.Fatalf("another text: %v", v)
	}
	if v, _ := m.Get("select 1", build); v != "plan of select 1" {
		t.Fatalf("back to the first text: %v", v)
	}
	if got := builds.Load() - before; got != 2 {
		t.Fatalf("a different text must rebuild: %d builds, want 2", got)
	}
}

func TestMemoKeepsErrorsAndCopiesText(t *testing.T) {
	var m Memo
	refused := errors.New("refused")
	buf := []byte("select x")
	var kept string
	build := func(text string) (any, error) { kept = text; return nil, refused }
	text := unsafe.String(&buf[0], len(buf)) // aliases a buffer the caller reuses
	if _, err := m.Get(text, build); err != refused {
		t.Fatalf("err = %v", err)
	}
	copy(buf, "XXXXXXXX")
	calls := 0
	if _, err := m.Get("select x", func(string) (any, error) { calls++; return nil, nil }); err != refused || calls != 0 {
		t.Fatalf("the error must be cached: err %v, builds %d", err, calls)
	}
	if kept != "select x" {
		t.Fatalf("build kept %q after the caller reused its buffer", kept)
	}
}

// BenchmarkMemoHit is the per-execution cost of a cached derived value
// (e.g. the merge plan, whose build costs tens of microseconds).
func BenchmarkMemoHit(b *testing.B) {
	var m Memo
	text := "SELECT k, x FROM xs ORDER BY x, k LIMIT 10"
	build := func(string) (any, error) { return 1, nil }
	m.Get(text, build)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Get(text, build); err != nil {
			b.Fatal(err)
		}
	}
}

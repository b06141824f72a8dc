//go:build soak

package soak

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// settings of one run, from the environment.
type settings struct {
	clients  int
	duration time.Duration
	think    time.Duration
}

func readSettings(t *testing.T) settings {
	s := settings{clients: 2000, duration: 2 * time.Minute, think: time.Second}
	if v := os.Getenv("SOAK_CLIENTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("SOAK_CLIENTS=%q: want a positive number", v)
		}
		s.clients = n
	}
	for name, d := range map[string]*time.Duration{"SOAK_DURATION": &s.duration, "SOAK_THINK": &s.think} {
		if v := os.Getenv(name); v != "" {
			x, err := time.ParseDuration(v)
			if err != nil || x <= 0 {
				t.Fatalf("%s=%q: want a positive duration such as 10m", name, v)
			}
			*d = x
		}
	}
	return s
}

// counts are the clients' results, shared by every client goroutine.
type counts struct {
	queries, errors atomic.Int64
	mu              sync.Mutex
	byCode          map[string]int
	first           map[string]string // one message per SQLSTATE
}

func (c *counts) fail(err error) {
	c.errors.Add(1)
	code := "client"
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		code = pe.Code
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.byCode[code]++
	if _, ok := c.first[code]; !ok {
		c.first[code] = err.Error()
	}
}

// TestSoak: see the package comment. Phases: baseline (no client), idle
// (every client logged in, none active), load (mixed reads, upserts and
// transactions for the duration), after (every client gone). Asserts no
// statement failed, goroutines and fds back at their baseline after the
// clients left, and RSS flat during the load.
func TestSoak(t *testing.T) {
	set := readSettings(t)
	cluster := startCluster(t)
	r := startRouter(t, cluster)
	dsn := fmt.Sprintf("postgres://trusty@%s/app?sslmode=disable&connect_timeout=60", r.addr)
	res := &counts{byCode: map[string]int{}, first: map[string]string{}}
	start := time.Now()
	var table []sample
	take := func(phase string, clients int) sample {
		s := r.sample(t)
		s.at, s.phase, s.clients = time.Since(start).Round(time.Second), phase, int64(clients)
		s.queries, s.errors = res.queries.Load(), res.errors.Load()
		table = append(table, s)
		t.Logf("%-8s %6v clients %6d goroutines %6d fds %6d rss %7d KiB live heap %7d KiB statements %9d errors %d",
			s.phase, s.at, s.clients, s.goroutines, s.fds, s.rssKiB, s.heapKiB, s.queries, s.errors)
		return s
	}
	defer func() { printTable(t, table) }()

	if err := oneStatement(dsn); err != nil {
		t.Fatalf("first statement: %v", err)
	}
	time.Sleep(2 * time.Second)
	base := take("baseline", 0)

	conns := connectAll(t, dsn, set.clients)
	time.Sleep(5 * time.Second)
	idle := take("idle", len(conns))
	t.Logf("%d idle logged-in clients: RSS +%d KiB (%.1f KiB per client), live heap +%d KiB (%.1f KiB per client), goroutines +%d, fds +%d",
		len(conns), idle.rssKiB-base.rssKiB, float64(idle.rssKiB-base.rssKiB)/float64(len(conns)),
		idle.heapKiB-base.heapKiB, float64(idle.heapKiB-base.heapKiB)/float64(len(conns)),
		idle.goroutines-base.goroutines, idle.fds-base.fds)

	loadSamples := runLoad(t, conns, set, res, func() sample { return take("load", len(conns)) })
	for _, c := range conns {
		c.Close(context.Background())
	}
	peak := idle.goroutines
	for _, s := range loadSamples {
		peak = max(peak, s.goroutines)
	}
	after := waitSettled(t, base, peak, func() sample { return take("after", 0) })

	if !settled(base, after, peak) {
		profile, _ := filepath.Abs("../../bin/soak-heap.pprof")
		os.MkdirAll(filepath.Dir(profile), 0o755)
		r.saveHeapProfile(t, profile)
	}
	checkFlat(t, base, after, loadSamples, peak)
	if n := res.errors.Load(); n > 0 {
		t.Errorf("%d of %d statements failed: %v, e.g. %v", n, res.queries.Load()+n, res.byCode, res.first)
	}
	t.Logf("%d clients, %v: %d statements (%.0f/s), %d errors", set.clients, set.duration,
		res.queries.Load(), float64(res.queries.Load())/set.duration.Seconds(), res.errors.Load())
}

func oneStatement(dsn string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	_, err = c.Exec(ctx, "select 1")
	return err
}

// connectAll logs n clients in, 64 at a time.
func connectAll(t *testing.T, dsn string, n int) []*pgx.Conn {
	t.Helper()
	conns := make([]*pgx.Conn, n)
	errs := make([]error, n)
	next := atomic.Int64{}
	var wg sync.WaitGroup
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				conns[i], errs[i] = pgx.Connect(ctx, dsn)
				cancel()
			}
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, c := range conns {
			if c != nil {
				c.Close(context.Background())
			}
		}
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("client %d of %d: %v", i, n, err)
		}
	}
	return conns
}

// runLoad runs every client until the duration ends, sampling every 10 s,
// and returns the samples taken under load.
func runLoad(t *testing.T, conns []*pgx.Conn, set settings, res *counts, take func() sample) []sample {
	t.Helper()
	end := time.Now().Add(set.duration)
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		go func() { defer wg.Done(); client(c, uint64(i), end, set.think, res) }()
	}
	var samples []sample
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	for time.Now().Add(5 * time.Second).Before(end) {
		<-tick.C
		samples = append(samples, take())
	}
	wg.Wait()
	return samples
}

// client runs one statement at a time with a random pause (0.5–1.5 ×
// think) before each: 70% keyed reads, 20% upserts, 10% transactions of a
// read and an update.
func client(c *pgx.Conn, seed uint64, end time.Time, think time.Duration, res *counts) {
	rnd := rand.New(rand.NewPCG(seed, 42))
	for {
		pause := think/2 + time.Duration(rnd.Int64N(int64(think)))
		if time.Now().Add(pause).After(end) {
			return
		}
		time.Sleep(pause)
		id := rnd.Int64N(100_000) + 1
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		var err error
		switch p := rnd.IntN(10); {
		case p < 7:
			var n int64
			err = c.QueryRow(ctx, "select n from soak where id = $1", id).Scan(&n)
			if errors.Is(err, pgx.ErrNoRows) {
				err = nil
			}
		case p < 9:
			_, err = c.Exec(ctx, "insert into soak (id) values ($1) on conflict (id) do update set n = soak.n + 1", id)
		default:
			err = pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
				var n int64
				if err := tx.QueryRow(ctx, "select n from soak where id = $1", id).Scan(&n); err != nil && !errors.Is(err, pgx.ErrNoRows) {
					return err
				}
				_, err := tx.Exec(ctx, "update soak set n = n + 1 where id = $1", id)
				return err
			})
		}
		cancel()
		if err != nil {
			res.fail(err)
		} else {
			res.queries.Add(1)
		}
	}
}

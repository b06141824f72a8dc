package fleet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgrouter/pgrouter/test/testenv"
)

// TestPartitionedMemberFencesItself: with cluster.fence on, one member
// (fleet[partitioned], which reaches etcd through a relay) is cut off from
// etcd for longer than its lease while clients load all three. Sampled
// throughout from pg_stat_activity, no node ever holds more backends of
// (app, app) than the budget; the two survivors take the cut member's
// share; the cut member's clients get the fence's error (57P01 or 57P03,
// naming the fleet), none hangs — also one in a transaction running a long
// statement, whose backend is canceled and closed (its row never exists);
// once the relay heals, the member rejoins, gets its share back and serves
// again. The survivors' clients never fail.
func TestPartitionedMemberFencesItself(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cut := fleet[partitioned]
	setFence(t, true)
	t.Cleanup(func() { setFence(t, false) })
	waitSharesSettled(t)

	load := startLoad(ctx, 20)
	const longKey = 7001
	long, started := make(chan error, 1), make(chan struct{})
	go func() { long <- longTransaction(ctx, cut, longKey, started) }()
	steps := make(chan string, 1)
	stop := make(chan struct{})
	go func() {
		defer close(stop)
		select {
		case <-started:
		case <-time.After(20 * time.Second):
			steps <- "the long transaction did not start on " + cut.Name
			return
		}
		steps <- cutAndHeal(cut)
	}()
	most := sampleBackendsUntil(t, ctx, stop)
	results := load.finish()
	if msg := <-steps; msg != "" {
		t.Fatal(msg)
	}
	if err := <-long; !fenceError(err) {
		t.Errorf("long transaction on %s: %v; want the fence's error", cut.Name, err)
	}
	if n := directCount(t, fmt.Sprintf("select count(*) from users where user_id = %d", longKey)); n != 0 {
		t.Errorf("the fenced transaction's row exists (%d)", n)
	}
	for node, n := range most {
		t.Logf("node %s: at most %d backends (budget %d)", node, n, budget)
		if n > budget {
			t.Errorf("node %s: %d backends of app/app at once, budget %d", node, n, budget)
		}
	}
	if len(most) != len(env.Cluster.Shards) {
		t.Fatalf("sampled %d nodes, want %d", len(most), len(env.Cluster.Shards))
	}
	for i, r := range results {
		t.Logf("%s: %d queries, %d errors", fleet[i].Name, r.ok, len(r.errs))
		if r.hung > 0 {
			t.Errorf("%s: %d queries hung (no answer within %s)", fleet[i].Name, r.hung, queryWait)
		}
		if i != partitioned {
			if len(r.errs) > 0 {
				t.Errorf("%s (a survivor): %d client errors, first: %v", fleet[i].Name, len(r.errs), r.errs[0])
			}
			continue
		}
		if len(r.errs) == 0 {
			t.Errorf("%s (cut off): its clients got no error while it was fenced", cut.Name)
		}
		for _, err := range r.errs {
			if !fenceError(err) {
				t.Errorf("%s (cut off): client error %v; want the fence's (57P01 or 57P03, naming the fleet)", cut.Name, err)
				break
			}
		}
	}
	log, _ := os.ReadFile(cut.LogPath)
	for _, line := range []string{"fenced: every backend closed", "fence lifted"} {
		if !strings.Contains(string(log), line) {
			t.Errorf("%s did not log %q", cut.Name, line)
		}
	}
}

// longTransaction inserts key through m in a transaction, closes started,
// then runs a statement far longer than the test and returns its error.
func longTransaction(ctx context.Context, m *testenv.Member, key int, started chan<- struct{}) error {
	c, err := pgx.Connect(ctx, m.DSN())
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	tx, err := c.Begin(ctx)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, "insert into users (user_id, name) values ($1, 'fenced')", key); err != nil {
		return err
	}
	close(started)
	qctx, cancel := context.WithTimeout(ctx, queryWait)
	defer cancel()
	_, err = tx.Exec(qctx, "select pg_sleep(60)")
	if errors.Is(qctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("no answer within %s: %w", queryWait, err)
	}
	return err
}

// cutAndHeal cuts m off from etcd, waits until it fenced itself and the
// survivors took its share, heals, and waits until it holds its share again
// and serves. It returns what went wrong, or "".
func cutAndHeal(m *testenv.Member) string {
	etcdRelay.setCut(true)
	healed := false
	defer func() {
		if !healed {
			etcdRelay.setCut(false)
		}
	}()
	if !eventually(20*time.Second, func() bool { return metric(m, "pgrouter_fleet_fenced") == "1" }) {
		return m.Name + " did not fence itself while cut off from etcd"
	}
	if _, err := m.Admin("SHOW FLEET"); err == nil || !strings.Contains(err.Error(), "this member is fenced") {
		return fmt.Sprintf("SHOW FLEET on %s while fenced: %v; want an error saying it is fenced", m.Name, err)
	}
	if !eventuallyShares(budget/2, 2) {
		return "the survivors did not take the cut member's share (" + fmt.Sprint(budget/2) + " each)"
	}
	time.Sleep(time.Second) // the survivors' pools fill up to their new shares
	etcdRelay.setCut(false)
	healed = true
	if !eventuallyShares(budget/3, 3) {
		return m.Name + " did not get its share back after the relay healed"
	}
	if metric(m, "pgrouter_fleet_fenced") != "0" {
		return m.Name + " still reports itself fenced"
	}
	time.Sleep(time.Second) // its clients run again
	return ""
}

// eventually reports whether cond holds within d (polled every 20ms).
func eventually(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// setFence pushes the test config with cluster.fence on or off (and its
// lease_ttl) and waits until every member runs it under a lease of that TTL.
func setFence(t *testing.T, on bool) {
	t.Helper()
	logged := make([]int, len(fleet))
	for i, m := range fleet {
		out, _ := os.ReadFile(m.LogPath)
		logged[i] = len(out)
	}
	out, err := push(fleetYAMLFence(env, "", on))
	if err != nil {
		t.Fatal(err)
	}
	v := versionOf(t, out)
	ttl := leaseTTL
	if on {
		ttl = fenceLeaseTTL
	}
	for i, m := range fleet {
		waitUntil(t, 15*time.Second, fmt.Sprintf("%s runs version %d (fence %t) under a lease of %s", m.Name, v, on, ttl), func() bool {
			out, _ := os.ReadFile(m.LogPath)
			return runsVersion(m, v) && strings.Contains(string(out[logged[i]:]), "member="+m.Addr+" lease_ttl="+ttl)
		})
	}
}

// queryWait is how long a client waits for an answer before it counts as hung.
const queryWait = 15 * time.Second

// loadResult is what one member's clients saw.
type loadResult struct {
	ok, hung int
	errs     []error
}

// load is clients per member running short queries, reconnecting after an
// error, until finish.
type load struct {
	stop    chan struct{}
	wg      sync.WaitGroup
	mu      sync.Mutex
	results []loadResult
}

func startLoad(ctx context.Context, perMember int) *load {
	l := &load{stop: make(chan struct{}), results: make([]loadResult, len(fleet))}
	for i, m := range fleet {
		for range perMember {
			l.wg.Go(func() { l.client(ctx, i, m) })
		}
	}
	return l
}

func (l *load) client(ctx context.Context, i int, m *testenv.Member) {
	var c *pgx.Conn
	defer func() {
		if c != nil {
			c.Close(context.Background())
		}
	}()
	for {
		select {
		case <-l.stop:
			return
		case <-ctx.Done():
			return
		default:
		}
		qctx, cancel := context.WithTimeout(ctx, queryWait)
		var err error
		if c == nil {
			c, err = pgx.Connect(qctx, m.DSN())
		}
		if err == nil {
			_, err = c.Exec(qctx, "select pg_sleep(0.02)")
		}
		hung := errors.Is(qctx.Err(), context.DeadlineExceeded)
		cancel()
		l.mu.Lock()
		r := &l.results[i]
		switch {
		case err == nil:
			r.ok++
		case hung:
			r.hung++
		default:
			r.errs = append(r.errs, err)
		}
		l.mu.Unlock()
		if err != nil {
			if c != nil {
				c.Close(context.Background())
				c = nil
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// finish stops the clients and returns what each member's saw.
func (l *load) finish() []loadResult {
	close(l.stop)
	l.wg.Wait()
	return l.results
}

// fenceError reports whether err is the fence's: a session ended (57P01)
// or a backend refused (57P03), with a message naming the fleet.
func fenceError(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "57P01" || pe.Code == "57P03") && strings.Contains(pe.Message, "cut off from the fleet")
}

// TestFenceStopsEveryMemberWhileEtcdIsDown: the price of cluster.fence.
// With etcd stopped no member can renew, and none can tell that from being
// cut off alone: every member fences, its clients get the fence's error.
// When etcd returns (its new leader extends every lease) they renew the
// leases they had, lift the fence, hold their shares again and serve.
func TestFenceStopsEveryMemberWhileEtcdIsDown(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	setFence(t, true)
	t.Cleanup(func() { setFence(t, false) })
	waitSharesSettled(t)
	restartEtcd := stopEtcd(t)
	for _, m := range fleet {
		waitUntil(t, 20*time.Second, m.Name+" fences while etcd is down", func() bool { return metric(m, "pgrouter_fleet_fenced") == "1" })
	}
	for _, m := range fleet {
		c, err := pgx.Connect(ctx, m.DSN())
		if err == nil {
			_, err = c.Exec(ctx, "select 1 from users limit 1")
			c.Close(ctx)
		}
		if !fenceError(err) {
			t.Errorf("%s while fenced: %v; want the fence's error", m.Name, err)
		}
	}
	if err := restartEtcd(); err != nil {
		t.Fatal(err)
	}
	for _, m := range fleet {
		waitUntil(t, 20*time.Second, m.Name+" lifts its fence", func() bool { return metric(m, "pgrouter_fleet_fenced") == "0" })
	}
	waitSharesSettled(t)
	for _, m := range fleet {
		c, err := pgx.Connect(ctx, m.DSN())
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Exec(ctx, "select 1 from users limit 1")
		c.Close(ctx)
		if err != nil {
			t.Errorf("%s after etcd returned: %v", m.Name, err)
		}
	}
}

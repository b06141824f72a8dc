package fleet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgrouter/pgrouter/test/testenv"
)

// TestEtcdDownKeepsServingAndCatchesUp: with etcd stopped every member
// keeps serving its last version and reports the outage (metric, log); a
// push, a fleet PAUSE, SHOW FLEET and a cross-shard two-phase commit (whose
// decision must be recorded in etcd) are refused with a clear error; when
// etcd returns, a push reaches all three again.
func TestEtcdDownKeepsServingAndCatchesUp(t *testing.T) {
	ctx := context.Background()
	// A member holds only what the budget granted it when etcd goes away:
	// start from the settled shares, as a fleet that has run for a while.
	waitSharesSettled(t)
	restartEtcd := stopEtcd(t)
	for _, m := range fleet {
		waitUntil(t, 15*time.Second, m.Name+" reports etcd down", func() bool { return metric(m, "pgrouter_fleet_etcd_up") == "0" })
		c, err := pgx.Connect(ctx, m.DSN())
		if err != nil {
			t.Fatalf("%s while etcd is down: %v", m.Name, err)
		}
		_, err = c.Exec(ctx, "insert into users (user_id, name) values ($1, 'etcd down')", 5000+len(m.Name)*10+int(m.Name[1]))
		c.Close(ctx)
		if err != nil {
			t.Fatalf("%s: write while etcd is down: %v", m.Name, err)
		}
	}
	out, err := push(fleetYAML(env, ""))
	if err == nil || !strings.Contains(out, "etcd is unreachable") || !strings.Contains(out, "refused") {
		t.Fatalf("push with etcd down: err %v, output %q; want a refusal saying etcd is unreachable", err, out)
	}
	_, err = fleet[1].Admin("FLEET PAUSE")
	if err == nil || !strings.Contains(err.Error(), "etcd is unreachable") {
		t.Fatalf("FLEET PAUSE with etcd down: %v; want a refusal saying etcd is unreachable", err)
	}
	if _, err := fleet[0].Admin("SHOW FLEET"); err == nil || !strings.Contains(err.Error(), "etcd is unreachable") {
		t.Fatalf("SHOW FLEET with etcd down: %v; want an error saying etcd is unreachable", err)
	}
	crossShardRefused(t, fleet[2])
	if err := restartEtcd(); err != nil {
		t.Fatal(err)
	}
	for _, m := range fleet {
		waitUntil(t, 15*time.Second, m.Name+" reports etcd up", func() bool { return metric(m, "pgrouter_fleet_etcd_up") == "1" })
	}
	for _, m := range fleet {
		log, _ := os.ReadFile(m.LogPath)
		for _, line := range []string{"etcd unreachable: serving the last applied config", "etcd reachable again"} {
			if !strings.Contains(string(log), line) {
				t.Errorf("%s did not log %q", m.Name, line)
			}
		}
	}
	out, err = push(fleetYAML(env, "timeouts:\n  query: 40s\n"))
	if err != nil {
		t.Fatal(err)
	}
	v := versionOf(t, out)
	for _, m := range fleet {
		waitUntil(t, 15*time.Second, fmt.Sprintf("%s runs version %d after the outage", m.Name, v), func() bool { return runsVersion(m, v) })
	}
	// A member whose lease expired during the outage registers again on its
	// next keepalive, which need not come before it applied the version.
	waitUntil(t, 15*time.Second, fmt.Sprintf("SHOW FLEET lists the %d members after the outage", len(fleet)), func() bool {
		rows, err := fleet[0].Admin("SHOW FLEET")
		return err == nil && len(rows) == len(fleet)
	})
}

// stopEtcd stops etcd for the rest of a test; restart runs it again, and
// the test's cleanup does if the test did not get that far.
func stopEtcd(t *testing.T) (restart func() error) {
	etcd.Stop()
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			etcd.Restart()
		}
	})
	return func() error {
		restarted = true
		return etcd.Restart()
	}
}

// metric reads one unlabelled metric's value from m ("" when absent).
func metric(m *testenv.Member, name string) string {
	body := m.Scrape()
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	return ""
}

// metricSum adds up every series of one metric family on m (0 when absent).
func metricSum(m *testenv.Member, name string) float64 {
	sum := 0.0
	for _, line := range strings.Split(m.Scrape(), "\n") {
		if rest, ok := strings.CutPrefix(line, name); ok && (strings.HasPrefix(rest, "{") || strings.HasPrefix(rest, " ")) {
			var v float64
			fmt.Sscan(rest[strings.LastIndex(rest, " ")+1:], &v)
			sum += v
		}
	}
	return sum
}

// waitSharesSettled waits until SHOW FLEET gives every member its equal
// share of the budget.
func waitSharesSettled(t *testing.T) {
	t.Helper()
	want := fmt.Sprint(budget / len(fleet))
	waitUntil(t, 15*time.Second, "every member holds its share "+want, func() bool {
		rows, err := fleet[0].Admin("SHOW FLEET")
		if err != nil || len(rows) != len(fleet) {
			return false
		}
		for _, r := range rows {
			if r[3] != want {
				return false
			}
		}
		return true
	})
}

// crossShardRefused: a transaction writing on both shards through m is
// rolled back on both with 40000 naming etcd, and none of its rows exist.
func crossShardRefused(t *testing.T, m *testenv.Member) {
	t.Helper()
	ctx := context.Background()
	keys := []int64{keyOn(t, 0, 6000), keyOn(t, 1, 6000)}
	c, err := pgx.Connect(ctx, m.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if _, err := tx.Exec(ctx, "insert into users (user_id, name) values ($1, 'two shards, etcd down')", k); err != nil {
			t.Fatal(err)
		}
	}
	var pgErr *pgconn.PgError
	if err := tx.Commit(ctx); !errors.As(err, &pgErr) || pgErr.Code != "40000" || !strings.Contains(pgErr.Message, "etcd is unreachable") {
		t.Fatalf("cross-shard COMMIT with etcd down: %v; want 40000 saying etcd is unreachable", err)
	}
	if n := directCount(t, fmt.Sprintf("select count(*) from users where user_id in (%d, %d)", keys[0], keys[1])); n != 0 {
		t.Fatalf("%d rows of the refused cross-shard transaction exist", n)
	}
}

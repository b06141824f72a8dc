package fleet

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestKilledMemberTwoPhaseRecovered: a fourth member is killed while a
// cross-shard transaction sits prepared on both shards; once its lease
// expires the survivors finish it: rolled back when it was not decided yet
// (after_prepare), committed everywhere when the decision was recorded
// (after_decision). Either way no prepared transaction is left, and the
// budget share the dead member held goes back to the survivors.
func TestKilledMemberTwoPhaseRecovered(t *testing.T) {
	cases := []struct {
		pause     string
		committed bool
		base      int64
	}{
		{"after_prepare", false, 2000},
		{"after_decision", true, 3000},
	}
	for _, tc := range cases {
		t.Run(tc.pause, func(t *testing.T) {
			keys := []int64{keyOn(t, 0, tc.base), keyOn(t, 1, tc.base)}
			dir := t.TempDir()
			doomed, err := startMember(dir, "doomed-"+tc.pause, etcd.URL, "PGROUTER_TEST_2PC_PAUSE="+tc.pause)
			if err != nil {
				t.Fatal(err)
			}
			defer doomed.Kill()
			ctx := context.Background()
			c, err := pgx.Connect(ctx, doomed.DSN())
			if err != nil {
				t.Fatal(err)
			}
			go func() { // hangs at the pause point until the process dies
				tx, err := c.Begin(ctx)
				if err != nil {
					return
				}
				for _, k := range keys {
					tx.Exec(ctx, "insert into users (user_id, name) values ($1, 'in doubt')", k)
				}
				tx.Commit(ctx)
			}()
			waitUntil(t, 30*time.Second, "transaction prepared on both shards", func() bool { return len(preparedLeft(t)) == 2 })
			doomed.Kill()
			took := waitUntil(t, 60*time.Second, "survivors finish the killed member's prepared transactions", func() bool {
				return len(preparedLeft(t)) == 0
			})
			t.Logf("no prepared transaction left %s after the kill (lease_ttl 2s)", took.Round(100*time.Millisecond))
			want := 0
			if tc.committed {
				want = 2
			}
			if n := directCount(t, "select count(*) from users where user_id in ("+itoa(keys[0])+","+itoa(keys[1])+")"); n != want {
				t.Fatalf("%d of the transaction's rows are there, want %d (all or nothing)", n, want)
			}
			logs := survivorLogs(t)
			if !strings.Contains(logs, "by fleet recovery") {
				t.Fatalf("no survivor logged a fleet recovery:\n%s", logs)
			}
			waitSharesSettled(t) // the dead member's share of the budget went back to the three
		})
	}
}

// keyOn finds a user id from base up that hashes to shard i.
func keyOn(t *testing.T, shard int, base int64) int64 {
	t.Helper()
	r, err := env.Router()
	if err != nil {
		t.Fatal(err)
	}
	for k := base; ; k++ {
		s, err := r.ShardOfKey("users", []byte(itoa(k)))
		if err != nil {
			t.Fatal(err)
		}
		if s == shard {
			return k
		}
	}
}

// preparedLeft lists pgrouter's prepared transactions on every shard.
func preparedLeft(t *testing.T) []string {
	t.Helper()
	var all []string
	for _, s := range env.Cluster.Shards {
		c, err := s.Primary.Connect(context.Background(), "app")
		if err != nil {
			t.Fatal(err)
		}
		rows, err := c.Query(context.Background(), `select gid from pg_prepared_xacts where gid like 'pgrouter\_%'`)
		if err != nil {
			t.Fatal(err)
		}
		gids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		c.Close(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, gids...)
	}
	return all
}

func survivorLogs(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, m := range fleet {
		out, _ := os.ReadFile(m.LogPath)
		b.Write(out)
	}
	return b.String()
}

func itoa(k int64) string { return strconv.FormatInt(k, 10) }

package differential

import (
	"context"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
)

// profiles are client session settings that differ from the backends'
// defaults and from each other (output formats included: DateStyle,
// IntervalStyle, TimeZone, extra_float_digits). Each test client of a
// profile has a twin on the single database with the same settings, so
// answers compare byte for byte; clients of different profiles run at
// once over the same pooled backends, so nearly every statement needs
// the proxy's own session sync first — whose answers must never reach
// the client (issue #11 item 2).
var profiles = []string{
	"&application_name=diff_a&DateStyle=SQL,DMY&TimeZone=Asia/Tokyo&extra_float_digits=0",
	"&application_name=diff_b&IntervalStyle=iso_8601&TimeZone=America/Lima&search_path=public,pg_catalog&client_encoding=UNICODE",
	"&application_name=diff_c&DateStyle=German&IntervalStyle=sql_standard&extra_float_digits=-2&TimeZone=UTC",
}

// pair is one client through pgrouter and its twin on the single database.
type pair struct {
	name          string
	single, proxy *pgx.Conn
}

func pairs(t *testing.T) []pair {
	t.Helper()
	var out []pair
	for i, p := range profiles {
		out = append(out, pair{name: profileName(i),
			single: connect(t, env.Cluster.Shards[0].Primary.DSN(singleDB)+p),
			proxy:  connect(t, env.AppDSN()+p)})
	}
	return out
}

func profileName(i int) string { return string(rune('a' + i)) }

// eachPair runs f for every profile at once and waits for all.
func eachPair(t *testing.T, f func(i int, p pair)) {
	t.Helper()
	ps := pairs(t)
	var wg sync.WaitGroup
	for i, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(i, p)
		}()
	}
	wg.Wait()
}

// showSettings reads what a client sees of its session settings.
func showSettings(ctx context.Context, c *pgx.Conn) (string, error) {
	var s string
	err := c.QueryRow(ctx, "select current_setting('application_name') || ' ' || current_setting('DateStyle') || ' ' || current_setting('TimeZone') || ' ' || current_setting('IntervalStyle') || ' ' || current_setting('extra_float_digits') || ' ' || current_setting('search_path')").Scan(&s)
	return s, err
}

package wire

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/pgrouter/pgrouter/proxy"
)

// knownParamBugs: login parameters where pgrouter is known to differ (the
// "# bug:" of this test). The test fails on any other difference, and on a
// known one that no longer shows (remove it then).
var knownParamBugs = map[string]string{}

// TestStartupParameterStatus compares the ParameterStatus set a client
// receives at login, directly and through pgrouter (cold and warm), for
// every profile: drivers read these (client_encoding, DateStyle,
// integer_datetimes, standard_conforming_strings, application_name …).
func TestStartupParameterStatus(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	inst, err := proxy.Start(ctx, coldConfig, discardLog())
	if err != nil {
		t.Fatal(err)
	}
	defer closeInstance(inst)
	seen := map[string]bool{}
	for _, p := range profiles {
		want, err := startupParams(ctx, env.Cluster.Shards[0].Primary.DSN("app"), p)
		if err != nil {
			t.Fatal(err)
		}
		for _, mode := range []string{"cold", "warm"} { // the second login may reuse cached params
			got, err := startupParams(ctx, proxyDSN(inst.Addr), p)
			if err != nil {
				t.Fatalf("%s/%s: %v", mode, p.name, err)
			}
			for k, d := range paramDiff(want, got) {
				if bug, ok := knownParamBugs[k]; ok {
					seen[k] = true
					t.Logf("%s/%s: known bug (%s): %s", mode, p.name, bug, d)
				} else {
					t.Errorf("%s/%s: ParameterStatus at login differs from Postgres: %s", mode, p.name, d)
				}
			}
		}
	}
	for k, bug := range knownParamBugs {
		if !seen[k] {
			t.Errorf("known bug %q (%s) no longer shows: remove it from knownParamBugs", k, bug)
		}
	}
}

func startupParams(ctx context.Context, dsn string, p profile) (map[string]string, error) {
	c, err := dial(ctx, dsn, p, refTimeout)
	if err != nil {
		return nil, err
	}
	c.close()
	return c.params, nil
}

// paramDiff: parameter name → how it differs.
func paramDiff(want, got map[string]string) map[string]string {
	out := map[string]string{}
	for k, w := range want {
		if g, ok := got[k]; !ok || g != w {
			out[k] = fmt.Sprintf("%s: postgres %q, pgrouter %q (sent: %v)", k, w, g, ok)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			out[k] = fmt.Sprintf("%s: not sent by postgres, pgrouter %q", k, g)
		}
	}
	return out
}

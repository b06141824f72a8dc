// Package fleet runs three pgrouter processes as one fleet on a real
// etcd (Debian's etcd-server) and one real 2-shard cluster: config pushes
// reach every member, a fleet PAUSE holds writes everywhere, the connection
// budget holds under load, a killed member's in-doubt two-phase commits are
// finished by the survivors, and the fleet keeps serving while etcd is down.
package fleet

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	fleetpkg "github.com/pgrouter/pgrouter/fleet"
	"github.com/pgrouter/pgrouter/test/testenv"
)

var (
	env   *testenv.Env
	tmp   string // binary, etcd data, members' data and logs
	bin   string // the pgrouter binary under test
	etcd  *fleetpkg.LocalEtcd
	fleet []*testenv.Member // the three members every test may use
	// etcdRelay carries fleet[partitioned]'s etcd traffic: a test cuts it
	// to cut that member alone off from etcd (TestPartitionedMemberFences).
	etcdRelay *relay
)

const partitioned = 1

// refuser is the member whose environment clashes with a version that
// reads ${PGROUTER_TEST_QUERY_TIMEOUT:-…} (TestRefusedVersionNamesTheMember):
// the version validates where it is pushed and this member refuses it.
const (
	refuser    = 2
	refuserEnv = "PGROUTER_TEST_QUERY_TIMEOUT=soon"
)

// budget is cluster.pool_budget: backends per (node, user, database) for the whole fleet.
const budget = 12

const dbSection = `    two_phase_commit: true
    sharded_tables:
      - {table: users, column: user_id, type: int, function: hash}
`

const clusterSection = `cluster:
  lease_ttl: %s
  pool_budget: %d
  barrier_timeout: 10s
  fence: %t
`

func TestMain(m *testing.M) {
	var run func() int
	env, run = testenv.Main(runThenStop{m}, testenv.Options{Shards: 2, Sections: map[string]string{
		"db": dbSection, "pool": "  size: 20\n  acquire_timeout: 60s",
	}}, setup)
	os.Exit(run())
}

// runThenStop runs the tests, then stops the members and etcd before the
// cluster goes.
type runThenStop struct{ m *testing.M }

func (r runThenStop) Run() int {
	defer stopAll()
	code := r.m.Run()
	for _, m := range fleet { // a member built with -race reports to its log
		if out, _ := os.ReadFile(m.LogPath); strings.Contains(string(out), "DATA RACE") {
			fmt.Fprintf(os.Stderr, "member %s reported a data race:\n%s\n", m.Name, out)
			code = 1
		}
	}
	return code
}

// setup builds pgrouter, starts etcd, pushes the config and starts three members.
func setup(e *testenv.Env) error {
	ctx := context.Background()
	// The environment's own in-process pgrouter is not a fleet member: its
	// backends would count against the budget the test samples.
	e.Proxy.Close(ctx)
	e.Proxy = nil
	if err := e.ExecOnPrimaries(ctx, "app", "CREATE TABLE users (user_id bigint PRIMARY KEY, name text)"); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "pgrouter-fleet-")
	if err != nil {
		return err
	}
	tmp = dir
	bin = filepath.Join(dir, "pgrouter")
	args := []string{"build", "-o", bin}
	if os.Getenv("PGROUTER_TEST_RACE") != "" { // the members under the race detector (slow; a final check)
		args = append(args, "-race")
	}
	if out, err := exec.Command("go", append(args, "../../cmd/pgrouter")...).CombinedOutput(); err != nil {
		return fmt.Errorf("build pgrouter: %v\n%s", err, out)
	}
	if etcd, err = fleetpkg.StartLocalEtcd(dir, "/pgrouter-test"); err != nil {
		return err
	}
	if _, err := push(fleetYAML(e, "")); err != nil {
		etcd.Stop()
		return err
	}
	endpoints, prefix, err := fleetpkg.ParseURL(etcd.URL)
	if err != nil {
		return err
	}
	if etcdRelay, err = startRelay(strings.TrimPrefix(endpoints[0], "http://")); err != nil {
		return err
	}
	for i := 0; i < 3; i++ {
		var env []string
		if i == refuser {
			env = append(env, refuserEnv)
		}
		url := etcd.URL
		if i == partitioned {
			url = "etcd://" + etcdRelay.addr() + prefix
		}
		m, err := startMember(dir, fmt.Sprintf("m%d", i), url, env...)
		if err != nil {
			stopAll()
			return err
		}
		fleet = append(fleet, m)
	}
	return nil
}

// stopAll ends the members and etcd (after the tests, or on a failed setup).
func stopAll() {
	for _, m := range fleet {
		m.Kill()
	}
	if etcdRelay != nil {
		etcdRelay.close()
	}
	if etcd != nil {
		etcd.Stop()
	}
	if os.Getenv("PGROUTER_TEST_KEEP") == "" {
		os.RemoveAll(tmp)
	}
}

// leaseTTL is the members' cluster.lease_ttl (short: tests wait for leases
// to expire), fenceLeaseTTL theirs with cluster.fence on: a member fences
// after three quarters of it without a renewal, which must not happen to
// every member whenever etcd stalls on this busy machine.
const leaseTTL, fenceLeaseTTL = "2s", "8s"

// fleetYAML is the test cluster's config with the cluster section (fence
// off) and extra (more top-level YAML) appended.
func fleetYAML(e *testenv.Env, extra string) string { return fleetYAMLFence(e, extra, false) }

// fleetYAMLFence is fleetYAML with cluster.fence as given.
func fleetYAMLFence(e *testenv.Env, extra string, fence bool) string {
	src, err := os.ReadFile(e.Path)
	if err != nil {
		panic(err)
	}
	ttl := leaseTTL
	if fence {
		ttl = fenceLeaseTTL
	}
	return string(src) + fmt.Sprintf(clusterSection, ttl, budget, fence) + extra
}

// push publishes yaml through `pgrouter config push` (--wait 0, unless
// flags say otherwise: the last value wins) and returns its output.
func push(yaml string, flags ...string) (string, error) {
	f, err := os.CreateTemp("", "pgrouter-push-*.yaml")
	if err != nil {
		return "", err
	}
	defer os.Remove(f.Name())
	f.WriteString(yaml)
	f.Close()
	args := append([]string{"config", "push", f.Name(), "--etcd", etcd.URL, "--wait", "0"}, flags...)
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("config push: %v: %s", err, out)
	}
	return string(out), nil
}

// versionOf parses "published as version N" from push's output.
func versionOf(t *testing.T, out string) int64 {
	t.Helper()
	var v int64
	i := strings.Index(out, "published as version ")
	if i < 0 {
		t.Fatalf("push output without a version: %q", out)
	}
	fmt.Sscanf(out[i+len("published as version "):], "%d", &v)
	return v
}

package fleet

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// TestRefusedVersionNamesTheMember: a version that validates where it is
// pushed but that one member cannot apply (its environment gives
// timeouts.query a value that is not a duration) is applied by the others;
// that member keeps its version and says why (SHOW FLEET health, its log,
// pgrouter_config_refused_version), `config push --wait` names it, and a
// FLEET RELOAD fails naming it. The next good version reaches all three,
// and FLEET RELOAD then succeeds.
func TestRefusedVersionNamesTheMember(t *testing.T) {
	before := currentVersion(t)
	out, err := push(fleetYAML(env, "timeouts:\n  query: ${PGROUTER_TEST_QUERY_TIMEOUT:-30s}\n"), "--wait", "30s")
	bad := fleet[refuser]
	if err == nil || !strings.Contains(out, "member "+bad.Addr+" still runs version "+fmt.Sprint(before)) {
		t.Fatalf("push --wait: err %v, output %q; want it to name %s, which refuses the version", err, out, bad.Addr)
	}
	v := versionOf(t, out)
	t.Logf("config push: %s", out)
	for i, m := range fleet {
		if i != refuser {
			waitUntil(t, 10*time.Second, fmt.Sprintf("%s runs version %d", m.Name, v), func() bool { return runsVersion(m, v) })
		}
	}
	if !runsVersion(bad, before) || metric(bad, "pgrouter_config_refused_version") != fmt.Sprint(v) {
		t.Fatalf("%s: want version %d running, %d refused; metrics: version %s, refused %s", bad.Name, before, v,
			metric(bad, "pgrouter_config_version"), metric(bad, "pgrouter_config_refused_version"))
	}
	row := fleetRow(t, bad.Addr)
	if row[1] != fmt.Sprint(before) || !strings.Contains(row[2], fmt.Sprintf("version %d refused", v)) || !strings.Contains(row[2], "timeouts.query") {
		t.Fatalf("SHOW FLEET row of %s: %v; want version %d and health saying version %d was refused over timeouts.query", bad.Name, row, before, v)
	}
	if log, _ := os.ReadFile(bad.LogPath); !strings.Contains(string(log), "fleet config version refused") {
		t.Fatalf("%s logged no refusal", bad.Name)
	}
	_, err = fleet[0].Admin("FLEET RELOAD")
	if err == nil || !strings.Contains(err.Error(), "member "+bad.Addr+" failed") || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("FLEET RELOAD with %s refusing the version: %v; want an error naming it", bad.Addr, err)
	}
	t.Logf("FLEET RELOAD: %v", err)
	out, err = push(fleetYAML(env, ""), "--wait", "30s")
	if err != nil || !strings.Contains(out, "every live member runs version") {
		t.Fatalf("push of a version every member accepts: %v %s", err, out)
	}
	if row := fleetRow(t, bad.Addr); row[2] != "ok" {
		t.Fatalf("SHOW FLEET row of %s after a good version: %v; want health ok", bad.Name, row)
	}
	if _, err := fleet[1].Admin("FLEET RELOAD"); err != nil {
		t.Fatalf("FLEET RELOAD once every member accepts the version: %v", err)
	}
}

// currentVersion is the version SHOW FLEET says the first member runs.
func currentVersion(t *testing.T) int64 {
	t.Helper()
	var v int64
	fmt.Sscan(fleetRow(t, fleet[0].Addr)[1], &v)
	return v
}

// fleetRow is SHOW FLEET's row for the member at addr.
func fleetRow(t *testing.T, addr string) []string {
	t.Helper()
	rows, err := fleet[0].Admin("SHOW FLEET")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r[0] == addr {
			return r
		}
	}
	t.Fatalf("SHOW FLEET does not list %s: %v", addr, rows)
	return nil
}

// TestReshardCommandsInAFleet: RESHARD runs on a fleet member (the
// fleet-wide cutover itself is tested in test/reshard, TestReshardFleet):
// a missing next file is the engine's error, not a refusal; RESHARD
// DIRECTORY reaches the engine too (a hash-sharded table is its 55000; the
// fleet-wide directory move is tested in test/reshard, TestReshardFleet);
// SHOW RESHARD lists nothing before any reshard.
func TestReshardCommandsInAFleet(t *testing.T) {
	_, err := fleet[1].Admin("RESHARD TO '/nonexistent/next.yaml'")
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/next.yaml") || !strings.Contains(err.Error(), "55000") {
		t.Fatalf("RESHARD TO a missing file on a fleet member: %v; want 55000 naming the file", err)
	}
	_, err = fleet[1].Admin("RESHARD DIRECTORY users TO shard1 KEYS 1")
	if err == nil || !strings.Contains(err.Error(), "not directory-sharded") || !strings.Contains(err.Error(), "55000") {
		t.Fatalf("RESHARD DIRECTORY of a hash-sharded table on a fleet member: %v; want the engine's 55000 (not directory-sharded)", err)
	}
	if rows, err := fleet[0].Admin("SHOW RESHARD"); err != nil || len(rows) != 0 {
		t.Fatalf("SHOW RESHARD before any reshard: %v %v; want no rows", rows, err)
	}
}

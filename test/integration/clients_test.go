package integration

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pgrouter/pgrouter/topology/localpg"
)

func pgTool(t *testing.T, name string) string {
	t.Helper()
	dir, err := localpg.FindBinDir()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, name)
}

func TestPsqlScript(t *testing.T) {
	script := `
create table if not exists psql_t (id int, note text);
truncate psql_t;
begin;
insert into psql_t values (1, 'one'), (2, 'two');
commit;
copy psql_t from stdin;
3	three
4	four
\.
select count(*) as n from psql_t \gset
\echo rows=:n
copy (select id from psql_t order by id) to stdout;
select 1/0;
select 'still alive';
`
	cmd := exec.Command(pgTool(t, "psql"), "-X", "-v", "ON_ERROR_STOP=0", env.AppDSN())
	cmd.Stdin = strings.NewReader(script)
	out, _ := cmd.CombinedOutput()
	s := string(out)
	for _, want := range []string{"rows=4", "1\n2\n3\n4\n", "division by zero", "still alive"} {
		if !strings.Contains(s, want) {
			t.Fatalf("psql output lacks %q:\n%s", want, s)
		}
	}
}

func TestPgbenchModes(t *testing.T) {
	// Initialise directly on the primary; run the workload through the proxy.
	init := exec.Command(pgTool(t, "pgbench"), "-i", "-q", "-s", "1", env.Cluster.Shards[0].Primary.DSN("app"))
	if out, err := init.CombinedOutput(); err != nil {
		t.Fatalf("pgbench -i: %v\n%s", err, out)
	}
	env.Cluster.WaitReplicated(t.Context())
	for _, mode := range []string{"simple", "extended", "prepared"} {
		t.Run(mode, func(t *testing.T) {
			cmd := exec.Command(pgTool(t, "pgbench"), "-n", "-M", mode, "-c", "100", "-j", "4", "-t", "20", env.AppDSN())
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("pgbench: %v\n%s", err, out)
			}
			processed := regexp.MustCompile(`number of transactions actually processed: (\d+)/(\d+)`).FindStringSubmatch(string(out))
			failed := regexp.MustCompile(`number of failed transactions: (\d+)`).FindStringSubmatch(string(out))
			if processed == nil || processed[1] != processed[2] || processed[1] != fmt.Sprint(100*20) {
				t.Fatalf("not all transactions processed:\n%s", out)
			}
			if failed != nil && failed[1] != "0" {
				t.Fatalf("failed transactions:\n%s", out)
			}
		})
	}
}

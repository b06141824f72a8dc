package router

import (
	"strings"
	"testing"
)

func TestExplain(t *testing.T) {
	r := testRouter(t)
	cases := []struct {
		sql    string
		params []string
		want   []string
	}{
		{"SELECT * FROM events WHERE id = $1", []string{"1500"}, []string{"shards:    s1", "role:      replica", "shard key events.id", "group 1 [events]"}},
		{"DELETE FROM users", nil, []string{"role:      primary (DELETE writes)", "every one of them", "does not restrict shard key"}},
		{"SELECT * FROM widgets", nil, []string{"error:     42P01", "hint:"}},
		{"/* pgrouter: shard=s2 */ SELECT 1", nil, []string{"shards:    s2", "hint shard=s2"}},
		{"SET search_path TO app", nil, []string{"set:       SET search_path TO 'app'", "any one of them"}},
		{"SELECT pg_advisory_lock(1)", nil, []string{"pins:", "calls pg_advisory_lock()"}},
		{"SELEC 1", nil, []string{"parse:     failed"}},
	}
	for _, c := range cases {
		out := r.Explain(c.sql, c.params)
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("Explain(%q) lacks %q:\n%s", c.sql, w, out)
			}
		}
	}
	if st := r.Stats(); st.Size != 0 {
		t.Errorf("Explain filled the cache: %+v", st)
	}
}

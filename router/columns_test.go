package router

import (
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// An INSERT into a sharded table without a column list routes once the
// table's column order is known, in both protocols, and asks for it again
// after ForgetColumns.
func TestInsertWithoutColumns(t *testing.T) {
	r := testRouter(t)
	const sql = "INSERT INTO users VALUES ('x', 7), ('y', 1007)"
	_, _, err := r.RouteSimple(sql, Session{}, nil)
	var need *NeedColumnsError
	if !errors.As(err, &need) || need.Table != "users" {
		t.Fatalf("without the column order: err %v, want *NeedColumnsError for users", err)
	}
	if q := need.Query(); !strings.Contains(q, `to_regclass('"users"')`) {
		t.Errorf("catalog query %q", q)
	}
	var pe *pgconn.PgError
	if !errors.As(need.Refusal(), &pe) || pe.Code != "0A000" || !strings.Contains(pe.Message, "must name its columns") {
		t.Errorf("refusal %v", need.Refusal())
	}
	r.SetColumns("users", []string{"name", "user_id"})
	_, want, err := r.RouteSimple("INSERT INTO users (name, user_id) VALUES ('x', 7), ('y', 1007)", Session{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"simple", "extended"} {
		var rt Route
		if mode == "simple" {
			_, rt, err = r.RouteSimple(sql, Session{}, nil)
		} else {
			p, _ := r.Prepare("INSERT INTO users VALUES ($1, $2)")
			rt, err = r.Route(p, Args{Params: [][]byte{[]byte("x"), []byte("7")}}, Session{})
			_, want, _ = r.RouteSimple("INSERT INTO users (name, user_id) VALUES ('x', 7)", Session{}, nil)
		}
		if err != nil || rt.Shards != want.Shards || rt.Split != want.Split {
			t.Errorf("%s: route %+v err %v, want shards %v split %v", mode, rt, err, want.Shards, want.Split)
		}
	}
	r.SetColumns("users", []string{"name"})
	if _, _, err := r.RouteSimple(sql, Session{}, nil); err == nil || !strings.Contains(err.Error(), "does not set shard key") {
		t.Errorf("table without the key column: err %v", err)
	}
	r.ForgetColumns()
	if _, _, err := r.RouteSimple(sql, Session{}, nil); !errors.As(err, &need) {
		t.Errorf("after ForgetColumns: err %v, want *NeedColumnsError", err)
	}
}

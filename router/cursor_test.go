package router

import (
	"strings"
	"testing"
)

func TestParseCursor(t *testing.T) {
	c, ok := ParseCursor(`DECLARE "c_1" NO SCROLL CURSOR WITHOUT HOLD FOR select id from items order by id`)
	if !ok || c.Kind != 'D' || c.Name != "c_1" || strings.TrimSpace(c.Query) != "select id from items order by id" {
		t.Fatalf("declare: %+v %v", c, ok)
	}
	c, ok = ParseCursor(`declare cur binary cursor for select 1`)
	if !ok || c.Options&CursorBinary == 0 || c.Name != "cur" {
		t.Fatalf("binary declare: %+v %v", c, ok)
	}
	for sql, want := range map[string]CursorStmt{
		`FETCH FORWARD 4 FROM "c_1"`: {Kind: CursorFetch, Name: "c_1", Count: 4, Forward: true},
		`fetch next from cur`:        {Kind: CursorFetch, Name: "cur", Count: 1, Forward: true},
		`fetch all in cur`:           {Kind: CursorFetch, Name: "cur", Count: FetchAll, Forward: true},
		`fetch 3 cur`:                {Kind: CursorFetch, Name: "cur", Count: 3, Forward: true},
		`fetch backward 2 from cur`:  {Kind: CursorFetch, Name: "cur", Count: 2},
		`move forward 2 in cur`:      {Kind: CursorMove, Name: "cur", Count: 2, Forward: true},
		`close cur`:                  {Kind: CursorClose, Name: "cur"},
		`close all`:                  {Kind: CursorClose},
	} {
		if c, ok := ParseCursor(sql); !ok || c != want {
			t.Errorf("%s: %+v %v, want %+v", sql, c, ok, want)
		}
	}
	if _, ok := ParseCursor("select 1"); ok {
		t.Error("select parsed as a cursor statement")
	}
}

package sharding

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// A client whose client_encoding is not UTF8 sends its literals and
// parameters in that encoding; Postgres converts them to the server's
// UTF8 before hashing. pgrouter must route (and split) on the same bytes:
// the multi-row INSERT is accepted and every row lands where Postgres's
// hash partitioning puts its UTF-8 text.
func TestLatin1KeysLandWherePostgresHashes(t *testing.T) {
	ctx := context.Background()
	pc, err := pgconn.Connect(ctx, env.AppDSN()+"&client_encoding=LATIN1")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close(ctx)
	// é ü ï ß in LATIN1: single bytes that are not UTF-8.
	sqls := []string{
		"insert into latin_tags (name, n) values ('caf\xe9', 1), ('x\xfc', 2), ('plain', 3), ('na\xefve', 4), ('stra\xdfe', 5)",
		"insert into latin_tags (name, n) values ('\xe9t\xe9', 6)",
	}
	for _, sql := range sqls {
		tag, err := pc.Exec(ctx, sql).ReadAll()
		if err != nil {
			t.Fatalf("%q: %v", sql, err)
		}
		t.Logf("%s", tag[0].CommandTag)
	}
	for i, name := range []string{"\xfcber", "gar\xe7on", "\xe0 la"} {
		r := pc.ExecParams(ctx, "insert into latin_tags (name, n) values ($1, $2)", [][]byte{[]byte(name), []byte(fmt.Sprint(10 + i))}, nil, nil, nil).Read()
		if r.Err != nil {
			t.Fatalf("parameter %q: %v", name, r.Err)
		}
	}
	// COPY data in LATIN1: its text keys too.
	if tag, err := pc.CopyFrom(ctx, strings.NewReader("d\xe9j\xe0\t20\n\xe7a\t21\nplain2\t22\n"), "copy latin_tags (name, n) from stdin"); err != nil || tag.RowsAffected() != 3 {
		t.Fatalf("COPY in LATIN1: %v %v", tag, err)
	}
	// A keyed read in LATIN1 finds its row (routed by the same hash).
	r := pc.ExecParams(ctx, "select n from latin_tags where name = $1", [][]byte{[]byte("caf\xe9")}, nil, nil, nil).Read()
	if r.Err != nil || len(r.Rows) != 1 || string(r.Rows[0][0]) != "1" {
		t.Fatalf("keyed read of 'café': %v %v", r.Rows, r.Err)
	}
	r = pc.ExecParams(ctx, "select n from latin_tags where name = 'na\xefve'", nil, nil, nil, nil).Read()
	if r.Err != nil || len(r.Rows) != 1 || string(r.Rows[0][0]) != "4" {
		t.Fatalf("keyed read of 'naïve': %v %v", r.Rows, r.Err)
	}
	checkPlacement(t, "latin_tags", "name", "hashcheck_text", 12)
}

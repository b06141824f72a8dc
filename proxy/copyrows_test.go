package proxy

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgrouter/pgrouter/router"
)

type gotRow struct {
	kind rowKind
	row  string
	key  *string // nil: NULL
}

// splitAll feeds data in chunks of every size from 1 to len and checks that
// the rows and keys never depend on where CopyData boundaries fall.
func splitAll(t *testing.T, cp *router.CopyPlan, data string) []gotRow {
	t.Helper()
	var first []gotRow
	for chunk := 1; chunk <= len(data); chunk++ {
		got, err := splitChunks(cp, data, chunk)
		if err != nil {
			t.Fatalf("chunk %d: %v", chunk, err)
		}
		if first == nil {
			first = got
			continue
		}
		if len(got) != len(first) {
			t.Fatalf("chunk %d: %d rows, chunk 1: %d", chunk, len(got), len(first))
		}
		for i := range got {
			if got[i].row != first[i].row || got[i].kind != first[i].kind || (got[i].key == nil) != (first[i].key == nil) ||
				got[i].key != nil && *got[i].key != *first[i].key {
				t.Fatalf("chunk %d row %d: %+v, chunk 1: %+v", chunk, i, got[i], first[i])
			}
		}
	}
	return first
}

func splitChunks(cp *router.CopyPlan, data string, chunk int) ([]gotRow, error) {
	c := newCopyRows(cp)
	var out []gotRow
	for off := 0; ; off += chunk {
		final := off >= len(data)
		if !final {
			c.feed([]byte(data[off:min(off+chunk, len(data))]))
		}
		for {
			row, kind, err := c.next(final)
			if err != nil {
				return out, err
			}
			if kind == rowMore || kind == rowEnd {
				if kind == rowEnd {
					out = append(out, gotRow{kind: rowEnd})
					return out, nil
				}
				break
			}
			g := gotRow{kind: kind, row: string(row)}
			if kind == rowData {
				k, err := c.key(row)
				if err != nil {
					return out, err
				}
				if k != nil {
					s := string(k)
					g.key = &s
				}
			}
			out = append(out, g)
		}
		c.compact()
		if final {
			return out, nil
		}
	}
}

func textPlan() *router.CopyPlan {
	return &router.CopyPlan{Table: "t", Column: "k", KeyIndex: 1, Columns: 3, Format: router.CopyText, Delimiter: '\t', Null: `\N`}
}

func csvPlan() *router.CopyPlan {
	return &router.CopyPlan{Table: "t", Column: "k", KeyIndex: 1, Columns: 3, Format: router.CopyCSV, Delimiter: ',', Quote: '"', Escape: '"'}
}

func keys(rows []gotRow) []string {
	var ks []string
	for _, r := range rows {
		switch {
		case r.kind == rowHeader:
			ks = append(ks, "HEADER")
		case r.kind == rowEnd:
			ks = append(ks, "END")
		case r.key == nil:
			ks = append(ks, "NULL")
		default:
			ks = append(ks, *r.key)
		}
	}
	return ks
}

func TestCopyRowsText(t *testing.T) {
	data := "a\t1\tx\n" +
		"b\\\tc\t2\ty\n" + // escaped delimiter in field 0
		"c\t\\N\tz\r\n" + // NULL key, CRLF
		"d\t\\x41\\102\\\\\\t\tw\n" + // escapes in the key: A B \ TAB
		"e\\\nf\t7\tmultiline\n" + // escaped newline in field 0
		"g\t8" // last line without newline
	rows := splitAll(t, textPlan(), data)
	got := strings.Join(keys(rows), "|")
	if want := "1|2|NULL|AB\\\t|7|8"; got != want {
		t.Fatalf("keys = %q, want %q", got, want)
	}
	if rows[2].row != "c\t\\N\tz\r\n" || rows[5].row != "g\t8" {
		t.Fatalf("rows are not forwarded raw: %q %q", rows[2].row, rows[5].row)
	}
}

func TestCopyRowsTextHeaderAndEndMarker(t *testing.T) {
	cp := textPlan()
	cp.Header = true
	rows := splitAll(t, cp, "h0\th1\th2\nx\t5\ty\n\\.\nignored\t6\n")
	if got := strings.Join(keys(rows), "|"); got != "HEADER|5|END" {
		t.Fatalf("keys = %q", got)
	}
}

func TestCopyRowsCSV(t *testing.T) {
	data := `"a,b",1,x` + "\n" +
		`z,"2",` + "\"multi\nline, \"\"quoted\"\"\"\n" +
		`q,,empty` + "\r\n" + // unquoted empty = NULL
		`q,"",quoted empty` + "\n" +
		`q,"3""4",y`
	rows := splitAll(t, csvPlan(), data)
	got := strings.Join(keys(rows), "|")
	if want := `1|2|NULL||3"4`; got != want {
		t.Fatalf("keys = %q, want %q", got, want)
	}
	if rows[1].row != "z,\"2\",\"multi\nline, \"\"quoted\"\"\"\n" {
		t.Fatalf("row 1 = %q", rows[1].row)
	}
}

func TestCopyRowsCSVEscapeAndForce(t *testing.T) {
	cp := csvPlan()
	cp.Escape = '\\'
	cp.Null = "NULL"
	rows := splitAll(t, cp, `a,"x\"y\\",1`+"\n"+`b,"NULL",2`+"\n"+`c,NULL,3`+"\n")
	if got := strings.Join(keys(rows), "|"); got != `x"y\|NULL|NULL` {
		t.Fatalf("keys = %q", got)
	}
	if *rows[1].key != "NULL" {
		t.Fatal("a quoted NULL string is a value, not NULL")
	}
	cp.ForceNull = true
	rows = splitAll(t, cp, `b,"NULL",2`+"\n")
	if rows[0].key != nil {
		t.Fatal("FORCE_NULL: quoted null string must be NULL")
	}
	cp.ForceNull, cp.ForceNotNull = false, true
	rows = splitAll(t, cp, `c,NULL,3`+"\n")
	if rows[0].key == nil || *rows[0].key != "NULL" {
		t.Fatal("FORCE_NOT_NULL: the null string must be a value")
	}
}

func TestCopyRowsErrors(t *testing.T) {
	for _, tc := range []struct {
		cp   *router.CopyPlan
		data string
		code string
	}{
		{textPlan(), "only-one-field\n", "22P04"},
		{csvPlan(), "a,\"unterminated\n", "22P04"},
		{&router.CopyPlan{Format: router.CopyBinary, KeyIndex: 0, Columns: 1}, "NOTPGCOPY-header-bytes", "22P04"},
	} {
		_, err := splitChunks(tc.cp, tc.data, len(tc.data))
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != tc.code {
			t.Errorf("%q: err = %v, want %s", tc.data, err, tc.code)
		}
	}
}

func TestCopyRowsBinary(t *testing.T) {
	var b []byte
	b = append(b, binarySignature...)
	b = binary.BigEndian.AppendUint32(b, 0)
	b = binary.BigEndian.AppendUint32(b, 3) // header extension
	b = append(b, "ext"...)
	tuple := func(key []byte, note string) {
		b = binary.BigEndian.AppendUint16(b, 2)
		if key == nil {
			b = binary.BigEndian.AppendUint32(b, 0xFFFFFFFF)
		} else {
			b = binary.BigEndian.AppendUint32(b, uint32(len(key)))
			b = append(b, key...)
		}
		b = binary.BigEndian.AppendUint32(b, uint32(len(note)))
		b = append(b, note...)
	}
	tuple(binary.BigEndian.AppendUint64(nil, 42), "hello")
	tuple(nil, "null key")
	tuple([]byte("k"), "")
	b = binary.BigEndian.AppendUint16(b, 0xFFFF)
	b = append(b, "junk after trailer"...)
	cp := &router.CopyPlan{Format: router.CopyBinary, KeyIndex: 0, Columns: 2}
	rows := splitAll(t, cp, string(b))
	if len(rows) != 5 || rows[0].kind != rowHeader || len(rows[0].row) != 22 || rows[4].kind != rowEnd {
		t.Fatalf("rows = %+v", rows)
	}
	if *rows[1].key != string(binary.BigEndian.AppendUint64(nil, 42)) || rows[2].key != nil || *rows[3].key != "k" {
		t.Fatalf("keys = %+v", rows)
	}
	cp.Columns = 3
	if _, err := splitChunks(cp, string(b), len(b)); err == nil || !strings.Contains(err.Error(), "field count") {
		t.Fatalf("wrong field count: err = %v", err)
	}
}

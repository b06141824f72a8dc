package proxy

import (
	"strings"
	"testing"

	"github.com/pgrouter/pgrouter/pgwire"
)

// keptFrames names the frames of a kept portal's answer: D<row>, N<notice>,
// s (PortalSuspended), C<tag>.
func keptFrames(t *testing.T, b []byte) string {
	t.Helper()
	var out []string
	for len(b) >= 5 {
		n := int(b[1])<<24 | int(b[2])<<16 | int(b[3])<<8 | int(b[4])
		body := b[5 : 1+n]
		switch b[0] {
		case pgwire.DataRow, pgwire.NoticeResponse:
			out = append(out, string(b[0])+string(body))
		case pgwire.PortalSuspended:
			out = append(out, "s")
		case pgwire.CommandComplete:
			out = append(out, "C"+strings.TrimSuffix(string(body), "\x00"))
		default:
			t.Fatalf("unexpected frame %q", b[0])
		}
		b = b[1+n:]
	}
	return strings.Join(out, " ")
}

func execBody(limit int) []byte { return []byte{0, 0, 0, 0, byte(limit)} }

// A kept portal's notices come in their place among its rows: those
// raised before a row with it, those after the last row only with the
// Execute that reaches the end (a limit stops Postgres before them).
func TestKeptPortalNoticesInPlace(t *testing.T) {
	p := &keptPortal{
		rows:    [][]byte{[]byte("1"), []byte("2"), []byte("3")},
		notices: []keptNotice{{0, []byte("a")}, {2, []byte("b")}, {2, []byte("c")}, {3, []byte("z")}},
	}
	steps := []struct {
		limit int
		want  string
	}{
		{1, "Na D1 s"},
		{1, "D2 s"},
		{1, "Nb Nc D3 s"},
		{1, "Nz CSELECT 0"},
		{0, "CSELECT 0"},
	}
	for i, s := range steps {
		if got := keptFrames(t, p.execute(nil, execBody(s.limit))); got != s.want {
			t.Errorf("Execute %d (limit %d) = %q, want %q", i, s.limit, got, s.want)
		}
	}
	q := &keptPortal{rows: [][]byte{[]byte("1"), []byte("2")}, notices: []keptNotice{{1, []byte("a")}, {2, []byte("z")}}}
	if got := keptFrames(t, q.execute(nil, execBody(0))); got != "D1 Na D2 Nz CSELECT 2" {
		t.Errorf("Execute without a limit = %q", got)
	}
	m := &keptPortal{rows: [][]byte{[]byte("1"), []byte("2")}, notices: []keptNotice{{1, []byte("a")}, {2, []byte("z")}}}
	out, n := m.fetch(nil, 5, false) // MOVE: the rows skipped, their notices raised
	if got := keptFrames(t, out); n != 2 || got != "Na Nz" {
		t.Errorf("MOVE = %q, %d rows", got, n)
	}
}

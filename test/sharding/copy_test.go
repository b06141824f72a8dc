package sharding

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgrouter/pgrouter/topology/localpg"
)

// truncateCopyTables empties the COPY tables on every shard directly.
func truncateCopyTables(t *testing.T) {
	t.Helper()
	for _, s := range env.Cluster.Shards {
		c, err := s.Primary.Connect(context.Background(), "app")
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Exec(context.Background(), "TRUNCATE copy_users, copy_tags")
		c.Close(context.Background())
		if err != nil {
			t.Fatal(err)
		}
	}
}

// shardContents reads key → value (nil = NULL) of a table from every shard
// directly; a key found on two shards fails the test.
func shardContents(t *testing.T, query string) map[string]*string {
	t.Helper()
	ctx := context.Background()
	out := map[string]*string{}
	for _, s := range env.Cluster.Shards {
		c, err := s.Primary.Connect(ctx, "app")
		if err != nil {
			t.Fatal(err)
		}
		rows, _ := c.Query(ctx, query)
		for rows.Next() {
			var k string
			var v *string
			if err := rows.Scan(&k, &v); err != nil {
				t.Fatal(err)
			}
			if _, dup := out[k]; dup {
				t.Errorf("key %s is on more than one shard", k)
			}
			out[k] = v
		}
		err = rows.Err()
		c.Close(ctx)
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// countOnShards counts a table's rows on every shard directly.
func countOnShards(t *testing.T, table string) int {
	t.Helper()
	ctx := context.Background()
	total := 0
	for _, s := range env.Cluster.Shards {
		c, err := s.Primary.Connect(ctx, "app")
		if err != nil {
			t.Fatal(err)
		}
		var n int
		err = c.QueryRow(ctx, "SELECT count(*) FROM "+table).Scan(&n)
		c.Close(ctx)
		if err != nil {
			t.Fatal(err)
		}
		total += n
	}
	return total
}

// chunkReader hands out data in small pseudo-random pieces, so pgconn's
// CopyFrom sends CopyData messages that cut rows (and quoted fields,
// escapes, CRLFs) at arbitrary places.
type chunkReader struct {
	data []byte
	rnd  *rand.Rand
	fail error // returned once the data is half read (client CopyFail)
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := min(1+r.rnd.Intn(300), len(r.data), len(p))
	if r.fail != nil && len(r.data) < n*50 {
		return 0, r.fail
	}
	copy(p, r.data[:n])
	r.data = r.data[n:]
	return n, nil
}

func newChunkReader(data string) *chunkReader {
	return &chunkReader{data: []byte(data), rnd: rand.New(rand.NewSource(7))}
}

// textCopyData builds n text-format rows for copy_users: escapes (tab,
// newline, backslash, octal/hex-escaped keys), NULL notes and a literal \N.
func textCopyData(n int, firstID int64) (string, map[string]*string) {
	var b strings.Builder
	want := map[string]*string{}
	for i := 0; i < n; i++ {
		id := firstID + int64(i)
		key := strconv.FormatInt(id, 10)
		enc := key
		if i%7 == 0 { // the key itself written with escapes: \x2d = '-', \06x = digits
			var e strings.Builder
			for j, ch := range []byte(key) {
				if j%2 == 0 {
					fmt.Fprintf(&e, `\x%02x`, ch)
				} else {
					fmt.Fprintf(&e, `\%03o`, ch)
				}
			}
			enc = e.String()
		}
		var note *string
		var encNote string
		switch i % 5 {
		case 0:
			s := fmt.Sprintf("plain %d", i)
			note, encNote = &s, s
		case 1:
			s := "tab\there, comma, \"quote\""
			note, encNote = &s, `tab\there, comma, "quote"`
		case 2:
			s := "back\\slash\nnew line"
			note, encNote = &s, `back\\slash\nnew line`
		case 3:
			encNote = `\N`
		case 4:
			s := `\N`
			note, encNote = &s, `\\N`
		}
		want[key] = note
		b.WriteString(enc + "\t" + encNote + "\n")
	}
	return b.String(), want
}

func psqlPath(t *testing.T) string {
	dir, err := localpg.FindBinDir()
	if err != nil {
		t.Fatal(err)
	}
	return dir + "/psql"
}

func sameContents(t *testing.T, got, want map[string]*string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d rows on the shards, want %d", len(got), len(want))
	}
	bad := 0
	for k, w := range want {
		g, ok := got[k]
		if !ok || (g == nil) != (w == nil) || (g != nil && *g != *w) {
			if bad++; bad <= 5 {
				t.Errorf("key %s: got %v, want %v (present %v)", k, deref(g), deref(w), ok)
			}
		}
	}
}

func deref(s *string) string {
	if s == nil {
		return "NULL"
	}
	return strconv.Quote(*s)
}

func TestCopyTextViaPsqlSplitsRowsByKey(t *testing.T) {
	truncateCopyTables(t)
	const n = 10000
	data, want := textCopyData(n, -3000)
	cmd := exec.Command(psqlPath(t), "-X", "-v", "ON_ERROR_STOP=1", env.AppDSN(),
		"-c", `\copy copy_users (user_id, note) from pstdin`, "-c", "SELECT 'after-copy-ok'")
	cmd.Stdin = strings.NewReader(data)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("psql: %v\n%s", err, out)
	}
	if !bytes.Contains(out, []byte("COPY 10000")) || !bytes.Contains(out, []byte("after-copy-ok")) {
		t.Fatalf("psql output lacks COPY 10000 / the next query:\n%s", out)
	}
	checkPlacement(t, "copy_users", "user_id", "hashcheck_int", n)
	sameContents(t, shardContents(t, "SELECT user_id::text, note FROM copy_users"), want)
}

// csvCopyData builds a CSV file with a header and n rows for copy_tags:
// quoted keys holding delimiters, doubled quotes, newlines, CRLF ends.
func csvCopyData(n int) (string, map[string]*string) {
	var b strings.Builder
	b.WriteString("name,n\r\n")
	want := map[string]*string{}
	for i := 0; i < n; i++ {
		var name, enc string
		switch i % 4 {
		case 0:
			name = fmt.Sprintf("tag,%d", i)
			enc = `"` + name + `"`
		case 1:
			name = fmt.Sprintf("multi\nline \"%d\"", i)
			enc = `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
		case 2:
			name = fmt.Sprintf("plain%d", i)
			enc = name
		case 3:
			name = fmt.Sprintf("  spaced %d, \r\n ", i)
			enc = `"` + name + `"`
		}
		v := strconv.Itoa(i)
		want[name] = &v
		b.WriteString(enc + "," + v + "\r\n")
	}
	return b.String(), want
}

func TestCopyCSVWithHeaderAndQuotedKeys(t *testing.T) {
	truncateCopyTables(t)
	const n = 10000
	data, want := csvCopyData(n)
	c := connect(t, pgx.QueryExecModeSimpleProtocol)
	tag, err := c.PgConn().CopyFrom(context.Background(), newChunkReader(data),
		"COPY copy_tags (name, n) FROM STDIN WITH (FORMAT csv, HEADER true)")
	if err != nil {
		t.Fatal(err)
	}
	if tag.String() != "COPY 10000" {
		t.Fatalf("tag = %q", tag)
	}
	checkPlacement(t, "copy_tags", "name", "hashcheck_text", n)
	sameContents(t, shardContents(t, "SELECT name, n::text FROM copy_tags"), want)
	var one int
	if err := c.QueryRow(context.Background(), "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("session after COPY: %v", err)
	}
}

func TestCopyBinaryViaPgxCopyFrom(t *testing.T) {
	truncateCopyTables(t)
	ctx := context.Background()
	c := connect(t, pgx.QueryExecModeCacheStatement)
	const n = 10000
	rows := make([][]any, n)
	want := map[string]*string{}
	for i := range rows {
		id := int64(i)*7919 - 20000
		var note *string
		if i%3 != 0 {
			s := fmt.Sprintf("note\t%d\n", i)
			note = &s
		}
		rows[i] = []any{id, note}
		want[strconv.FormatInt(id, 10)] = note
	}
	got, err := c.CopyFrom(ctx, pgx.Identifier{"copy_users"}, []string{"user_id", "note"}, pgx.CopyFromRows(rows))
	if err != nil {
		t.Fatal(err)
	}
	if got != n {
		t.Fatalf("CopyFrom reported %d rows, want %d", got, n)
	}
	checkPlacement(t, "copy_users", "user_id", "hashcheck_int", n)
	sameContents(t, shardContents(t, "SELECT user_id::text, note FROM copy_users"), want)

	tags := [][]any{{"", 0}, {"é", 1}, {"a\tb", 2}}
	for i := 3; i < 3000; i++ {
		tags = append(tags, []any{fmt.Sprintf("bin-%d", i), i})
	}
	if got, err := c.CopyFrom(ctx, pgx.Identifier{"copy_tags"}, []string{"n", "name"}, pgx.CopyFromSlice(len(tags), func(i int) ([]any, error) {
		return []any{tags[i][1], tags[i][0]}, nil
	})); err != nil || got != int64(len(tags)) {
		t.Fatalf("CopyFrom copy_tags: %d, %v", got, err)
	}
	checkPlacement(t, "copy_tags", "name", "hashcheck_text", len(tags))
}

func wantPgError(t *testing.T, err error, code string) *pgconn.PgError {
	t.Helper()
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != code {
		t.Fatalf("err = %v, want SQLSTATE %s", err, code)
	}
	return pe
}

func TestCopyBadKeyFailsOnEveryShard(t *testing.T) {
	truncateCopyTables(t)
	data, _ := textCopyData(9000, 1)
	lines := strings.SplitAfter(data, "\n")
	lines[4999] = "12x-secret\tbad key\n" // line 5000
	c := connect(t, pgx.QueryExecModeSimpleProtocol)
	_, err := c.PgConn().CopyFrom(context.Background(), newChunkReader(strings.Join(lines, "")),
		"COPY copy_users (user_id, note) FROM STDIN")
	pe := wantPgError(t, err, "22P02")
	if !strings.Contains(pe.Message, "line 5000") || strings.Contains(pe.Message, "secret") {
		t.Errorf("message %q: want the line number and not the value", pe.Message)
	}
	if n := countOnShards(t, "copy_users"); n != 0 {
		t.Fatalf("%d rows on the shards after a failed COPY, want 0", n)
	}
	// NULL key: no null_shard configured
	_, err = c.PgConn().CopyFrom(context.Background(), strings.NewReader("1,a\n,b\n"),
		"COPY copy_users (user_id, note) FROM STDIN (FORMAT csv)")
	wantPgError(t, err, "22023")
	if n := countOnShards(t, "copy_users"); n != 0 {
		t.Fatalf("%d rows after a NULL key, want 0", n)
	}
	var one int
	if err := c.QueryRow(context.Background(), "SELECT 1").Scan(&one); err != nil {
		t.Fatalf("session after failed COPY: %v", err)
	}
}

// A duplicate key on one shard fails the COPY on all of them: once when the
// error comes at CopyDone (small COPY), once mid-stream (large COPY, the
// duplicate first: that shard fails while data is still flowing).
func TestCopyShardErrorRollsBackEveryShard(t *testing.T) {
	for _, tc := range []struct {
		name  string
		rows  int
		dupAt int
	}{{"error at the end", 3000, 2990}, {"error mid-stream", 60000, 10}} {
		t.Run(tc.name, func(t *testing.T) {
			truncateCopyTables(t)
			ctx := context.Background()
			c := connect(t, pgx.QueryExecModeSimpleProtocol)
			if _, err := c.Exec(ctx, "INSERT INTO copy_users (user_id, note) VALUES (777777, 'existing')"); err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			for i := 0; i < tc.rows; i++ {
				id := 1000000 + i
				if i == tc.dupAt {
					id = 777777
				}
				fmt.Fprintf(&b, "%d\t%s\n", id, strings.Repeat("n", 40))
			}
			_, err := c.PgConn().CopyFrom(ctx, newChunkReader(b.String()), "COPY copy_users (user_id, note) FROM STDIN")
			wantPgError(t, err, "23505")
			if n := countOnShards(t, "copy_users"); n != 1 {
				t.Fatalf("%d rows on the shards, want only the 1 inserted before", n)
			}
			var n int
			if err := c.QueryRow(ctx, "SELECT count(*) FROM copy_users WHERE user_id = 777777").Scan(&n); err != nil || n != 1 {
				t.Fatalf("session after failed COPY: %d, %v", n, err)
			}
		})
	}
}

func TestCopyClientFailAndRefusals(t *testing.T) {
	truncateCopyTables(t)
	ctx := context.Background()
	c := connect(t, pgx.QueryExecModeSimpleProtocol)
	data, _ := textCopyData(20000, 1)
	r := newChunkReader(data)
	r.fail = errors.New("client gave up")
	_, err := c.PgConn().CopyFrom(ctx, r, "COPY copy_users (user_id, note) FROM STDIN")
	if err == nil || !strings.Contains(err.Error(), "client gave up") {
		t.Fatalf("client CopyFail: err = %v", err)
	}
	if n := countOnShards(t, "copy_users"); n != 0 {
		t.Fatalf("%d rows after client CopyFail, want 0", n)
	}

	_, err = c.PgConn().CopyFrom(ctx, strings.NewReader("1\tx\n"), "COPY copy_users FROM STDIN")
	pe := wantPgError(t, err, "0A000")
	if !strings.Contains(pe.Hint, "list the columns") {
		t.Errorf("hint = %q", pe.Hint)
	}

	if _, err := c.Exec(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	_, err = c.PgConn().CopyFrom(ctx, strings.NewReader("1\tx\n"), "COPY copy_users (user_id, note) FROM STDIN")
	// In a transaction it writes several shards: without two_phase_commit
	// (this cluster's) refused before any row is sent.
	pe = wantPgError(t, err, "25000")
	if !strings.Contains(pe.Hint, "two_phase_commit") {
		t.Errorf("hint = %q", pe.Hint)
	}
	if _, err := c.Exec(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	tag, err := c.PgConn().CopyFrom(tctx, strings.NewReader("1\tx\n2\ty\n3\tz\n"), "COPY copy_users (user_id, note) FROM STDIN")
	if err != nil || tag.RowsAffected() != 3 {
		t.Fatalf("COPY after the refusals: %v %v", tag, err)
	}
}

// SET pgrouter.shard narrows a COPY to that shard, but each row still goes
// by its key: rows of another shard are refused (nothing is written), rows
// of that shard are copied; the extended protocol is refused, never left
// hanging.
func TestCopySessionShardAndExtendedProtocol(t *testing.T) {
	truncateCopyTables(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := connect(t, pgx.QueryExecModeSimpleProtocol)
	if _, err := c.Exec(ctx, "SET pgrouter.shard = shard1"); err != nil {
		t.Fatal(err)
	}
	data, _ := textCopyData(500, 1)
	_, err := c.PgConn().CopyFrom(ctx, newChunkReader(data), "COPY copy_users (user_id, note) FROM STDIN")
	pe := wantPgError(t, err, "22023")
	if !strings.Contains(pe.Message, "sent this COPY to shard shard1") {
		t.Errorf("message = %q", pe.Message)
	}
	if n := countOnShards(t, "copy_users"); n != 0 {
		t.Fatalf("a refused COPY left %d rows", n)
	}
	r := newRouter(t)
	var own strings.Builder
	for k := 1; own.Len() < 2000; k++ {
		if s, _ := r.ShardOfKey("copy_users", []byte(strconv.Itoa(k))); s == 1 {
			fmt.Fprintf(&own, "%d\tmine\n", k)
		}
	}
	tag, err := c.PgConn().CopyFrom(ctx, strings.NewReader(own.String()), "COPY copy_users (user_id, note) FROM STDIN")
	rows := int64(strings.Count(own.String(), "\n"))
	if err != nil || tag.RowsAffected() != rows {
		t.Fatalf("COPY of shard1's rows with pgrouter.shard: %v %v", tag, err)
	}
	for i, s := range env.Cluster.Shards {
		pc, err := s.Primary.Connect(ctx, "app")
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		err = pc.QueryRow(ctx, "SELECT count(*) FROM copy_users").Scan(&n)
		pc.Close(ctx)
		if want := map[bool]int64{true: rows, false: 0}[i == 1]; err != nil || n != want {
			t.Fatalf("%s: %d rows (%v), want %d", s.Name, n, err, want)
		}
	}
	if _, err := c.Exec(ctx, "RESET pgrouter.shard"); err != nil {
		t.Fatal(err)
	}

	// (pgx's Exec would wait forever on plain Postgres too: it has no data
	// to send. ExecParams shows what pgrouter answers to Parse/Bind/Execute.)
	ext := connect(t, pgx.QueryExecModeCacheStatement)
	err = ext.PgConn().ExecParams(ctx, "COPY copy_users (user_id, note) FROM STDIN", nil, nil, nil, nil).Read().Err
	pe = wantPgError(t, err, "0A000")
	if !strings.Contains(pe.Message, "extended query protocol") {
		t.Errorf("message = %q", pe.Message)
	}
	var one int
	if err := ext.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		t.Fatalf("session after refused extended COPY: %v", err)
	}
}

// execOnShardPrimaries runs sql directly on the primaries of the given shards.
func execOnShardPrimaries(t *testing.T, sql string, shards ...int) {
	t.Helper()
	ctx := context.Background()
	for _, i := range shards {
		c, err := env.Cluster.Shards[i].Primary.Connect(ctx, "app")
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Exec(ctx, sql)
		c.Close(ctx)
		if err != nil {
			t.Fatal(err)
		}
	}
}

// A COPY that fails to start on one shard (its table is missing there) is
// ended on the shards where it did start; the client gets that shard's error.
func TestCopyFailingToStartOnOneShard(t *testing.T) {
	execOnShardPrimaries(t, "DROP TABLE IF EXISTS copy_partial; CREATE TABLE copy_partial (id bigint PRIMARY KEY)", 0, 1)
	t.Cleanup(func() { execOnShardPrimaries(t, "DROP TABLE IF EXISTS copy_partial", 0, 1) })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := connect(t, pgx.QueryExecModeSimpleProtocol)
	_, err := c.PgConn().CopyFrom(ctx, strings.NewReader("1\n2\n3\n"), "COPY copy_partial (id) FROM STDIN")
	wantPgError(t, err, "42P01")
	// The shards where it started were rolled back and their backends are
	// clean: a second attempt fails the same way, and the table takes an
	// exclusive lock at once.
	_, err = c.PgConn().CopyFrom(ctx, strings.NewReader("1\n"), "COPY copy_partial (id) FROM STDIN")
	wantPgError(t, err, "42P01")
	execOnShardPrimaries(t, "SET lock_timeout = '5s'; LOCK TABLE copy_partial IN ACCESS EXCLUSIVE MODE", 0, 1)
	var one int
	if err := c.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		t.Fatalf("session after the failed COPY: %v", err)
	}
}

// blockingReader hands out data, then blocks until released.
type blockingReader struct {
	data    []byte
	blocked chan struct{}
	release chan struct{}
}

func (r *blockingReader) Read(p []byte) (int, error) {
	if len(r.data) > 0 {
		n := copy(p, r.data)
		r.data = r.data[n:]
		return n, nil
	}
	close(r.blocked)
	<-r.release
	return 0, io.EOF
}

// A client that disconnects in the middle of a COPY leaves nothing behind:
// no rows, no open transaction holding locks on any shard.
func TestCopyClientDisconnectRollsBackEveryShard(t *testing.T) {
	truncateCopyTables(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := connect(t, pgx.QueryExecModeSimpleProtocol)
	data, _ := textCopyData(30000, 1)
	r := &blockingReader{data: []byte(data), blocked: make(chan struct{}), release: make(chan struct{})}
	defer close(r.release)
	go func() {
		<-r.blocked
		time.Sleep(200 * time.Millisecond) // let the data reach the shards
		c.PgConn().Conn().Close()
	}()
	if _, err := c.PgConn().CopyFrom(ctx, r, "COPY copy_users (user_id, note) FROM STDIN"); err == nil {
		t.Fatal("COPY on a closed connection succeeded")
	}
	// Every shard's COPY transaction must end: the lock comes within 5 s.
	execOnShardPrimaries(t, "SET lock_timeout = '5s'; LOCK TABLE copy_users IN ACCESS EXCLUSIVE MODE", 0, 1, 2)
	if n := countOnShards(t, "copy_users"); n != 0 {
		t.Fatalf("%d rows after the client vanished mid-COPY, want 0", n)
	}
}

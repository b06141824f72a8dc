package proxy

import "testing"

// Encoding names as clients send them: Postgres accepts any case, '-' and
// '_' variants, and asyncpg quotes its value ('utf-8').
func TestClientCodecNames(t *testing.T) {
	for name, convert := range map[string]bool{
		"UTF8": false, "'utf-8'": false, "unicode": false, "SQL_ASCII": false,
		"LATIN1": true, "iso-8859-1": true, "WIN1252": true, "windows-1252": true, "Shift_JIS": true, "EUC_KR": true,
	} {
		ss := &session{desired: map[string]string{"client_encoding": setConfigSQL("client_encoding", name)}}
		enc, _, ok := ss.clientCodec()
		if !ok || (enc != nil) != convert {
			t.Errorf("client_encoding %s: converter %v, known %v", name, enc, ok)
		}
	}
	ss := &session{desired: map[string]string{"client_encoding": setConfigSQL("client_encoding", "MULE_INTERNAL")}}
	if _, perr := ss.routerText("select 'caf\xe9'"); perr == nil || perr.Code != "0A000" {
		t.Errorf("non-ASCII text in MULE_INTERNAL: %v, want 0A000", perr)
	}
	ss = &session{desired: map[string]string{"client_encoding": "SET client_encoding TO 'LATIN1'"}}
	if got, _ := ss.routerText("select 'caf\xe9'"); got != "select 'café'" {
		t.Errorf("LATIN1 text read as %q", got)
	}
	if got := ss.clientText("select 'café'"); got != "select 'caf\xe9'" {
		t.Errorf("converted back to %q", got)
	}
}

// Every simple query passes routerText: ASCII text, and any text of a
// UTF-8 client, must go through without a copy.
func TestRouterTextCopiesNothingWhenNothingChanges(t *testing.T) {
	ss := &session{desired: map[string]string{}}
	for _, sql := range []string{"SELECT abalance FROM pgbench_accounts WHERE aid = 42", "select 'café'"} {
		if n := testing.AllocsPerRun(100, func() { _, _ = ss.routerText(sql) }); n != 0 {
			t.Errorf("routerText(%q): %v allocations, want 0", sql, n)
		}
	}
}

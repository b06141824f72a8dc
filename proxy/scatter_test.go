package proxy

import "testing"

// TestPlainText: only texts whose parse no session setting changes are
// named for the simple protocol (see simpleShardStatement).
func TestPlainText(t *testing.T) {
	for sql, want := range map[string]bool{
		"SELECT k, x FROM xs ORDER BY x, k LIMIT 10": true,
		"SELECT k FROM xs WHERE x > 1.5":             true,
		"SELECT k FROM xs WHERE at > '2026-01-01'":   false, // DateStyle, TimeZone
		"SELECT $$a$$":                         false,
		"SELECT k FROM xs WHERE name = 'x\\y'": false, // standard_conforming_strings
		"SELECT k FROM xś":                     false, // client_encoding
	} {
		if got := plainText(sql); got != want {
			t.Errorf("plainText(%q) = %v, want %v", sql, got, want)
		}
	}
}

package proxy

import (
	"fmt"
	"strings"
	"sync"
	"weak"

	"github.com/pgrouter/pgrouter/pgwire"

	"github.com/pgrouter/pgrouter/directory"
)

// dirRegistry remembers every directory.Directory still in use. Sessions
// keep the router (and so the Directory) of the config they logged in
// with, so after a reload INVALIDATE DIRECTORY must reach the older ones
// too; weak pointers let a Directory go once no router holds it.
type dirRegistry struct {
	mu   sync.Mutex
	dirs []weak.Pointer[directory.Directory]
}

func (r *dirRegistry) add(ds map[string]*directory.Directory) {
	r.mu.Lock()
	defer r.mu.Unlock()
	live := r.dirs[:0]
	for _, w := range r.dirs {
		if w.Value() != nil {
			live = append(live, w)
		}
	}
	r.dirs = live
	for _, d := range ds {
		r.dirs = append(r.dirs, weak.Make(d))
	}
}

func (r *dirRegistry) all() []*directory.Directory {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*directory.Directory
	for _, w := range r.dirs {
		if d := w.Value(); d != nil {
			out = append(out, d)
		}
	}
	return out
}

// retire empties and closes the directories of a replaced config: sessions
// still using them look keys up afresh.
func retireDirectories(ds map[string]*directory.Directory) {
	for _, d := range ds {
		d.Invalidate("", nil)
		d.Close()
	}
}

// adminInvalidate runs INVALIDATE DIRECTORY [table [key]]: it drops cached
// directory mappings (all, one table's, or one key's) so that a changed
// lookup table takes effect at once. The key is the rest of the command,
// optionally in single quotes (a quote inside doubled, as in SQL).
func (ss *session) adminInvalidate(cmd string) error {
	rest := strings.TrimSpace(cmd[len("INVALIDATE"):])
	word, rest, _ := strings.Cut(rest, " ")
	if !strings.EqualFold(word, "DIRECTORY") {
		return pgwire.Error(pgwire.SyntaxError, fmt.Sprintf("unknown admin command %q", cmd), "INVALIDATE DIRECTORY [table [key]]")
	}
	table, keyText, _ := strings.Cut(strings.TrimSpace(rest), " ")
	var key *string
	if k := strings.TrimSpace(keyText); k != "" {
		if len(k) >= 2 && k[0] == '\'' && k[len(k)-1] == '\'' {
			k = strings.ReplaceAll(k[1:len(k)-1], "''", "'")
		}
		key = &k
	}
	dropped, matched, err := ss.srv.invalidateDirectory(table, key)
	if err != nil {
		return toPgError(err)
	}
	if table != "" && !matched {
		return pgwire.Error(pgwire.UndefinedTable, fmt.Sprintf("no directory-sharded table %q", table), "SHOW CONFIG lists the sharded tables (function directory)")
	}
	ss.srv.log.Info("directory cache invalidated from the admin console", "client_id", ss.pid, "table", table, "one_key", key != nil, "dropped", dropped)
	ss.adminNotice(fmt.Sprintf("dropped %d cached directory mapping(s)", dropped))
	ss.adminTag("INVALIDATE DIRECTORY")
	return nil
}

// invalidateDirectory drops the cached mappings of table ("" = every
// table; key nil = every key) in every directory still in use; matched
// reports whether any has the table.
func (s *Server) invalidateDirectory(table string, key *string) (dropped int, matched bool, err error) {
	for _, d := range s.dirs.all() {
		if table != "" && !hasDirectoryTable(d, table) {
			continue
		}
		matched = true
		n, err := d.Invalidate(table, key)
		if err != nil {
			return dropped, matched, err
		}
		dropped += n
	}
	return dropped, matched, nil
}

func hasDirectoryTable(d *directory.Directory, table string) bool {
	for _, t := range d.Tables() {
		if strings.EqualFold(t, table) {
			return true
		}
	}
	return false
}

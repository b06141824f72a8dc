package sharding

import (
	"fmt"
	"strings"

	"github.com/pgrouter/pgrouter/config"
)

// DirectoryMove is the Move of the listed keys (canonical text) of a
// directory-sharded table from shard from to shard to: the lookup table,
// not the config, places them, so the keys themselves are the move (Keys;
// Where and Has select exactly them). The resharding engine and every
// member of a fleet build it the same way from the same keys.
func DirectoryMove(cfg *config.Config, db, table, from, to string, keys []string) (Move, error) {
	d := cfg.Database(db)
	if d == nil {
		return Move{}, fmt.Errorf("no database %q in the config", db)
	}
	t := d.Table(table)
	if t == nil || !strings.EqualFold(t.Function, "directory") || t.Directory == nil {
		return Move{}, fmt.Errorf("table %q of database %q is not directory-sharded", table, db)
	}
	typ, err := ParseType(t.Type)
	if err != nil {
		return Move{}, err
	}
	set := make(map[string]bool, len(keys))
	lits := make([]string, len(keys))
	for i, k := range keys {
		if _, err := KeyFromText(typ, []byte(k)); err != nil {
			return Move{}, fmt.Errorf("key %q of table %s: %w", k, table, err)
		}
		set[k] = true
		lits[i] = "'" + strings.ReplaceAll(k, "'", "''") + "'"
	}
	return Move{Database: db, Table: t.Table, Column: t.Column, Type: typ, From: from, To: to,
		Where: fmt.Sprintf("%s IN (%s)", quoteIdent(t.Column), strings.Join(lits, ", ")),
		Has:   func(k Key) bool { return !k.Null && set[KeyText(typ, k)] },
		Keys:  append([]string(nil), keys...)}, nil
}

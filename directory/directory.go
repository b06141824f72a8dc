package directory

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/pgrouter/pgrouter/pgwire"

	"github.com/hashicorp/golang-lru/v2/expirable"

	"github.com/pgrouter/pgrouter/config"
	"github.com/pgrouter/pgrouter/router/sharding"
)

// Directory holds the directory tables of one logical database. It
// implements sharding.Directory for router.WithDirectory.
type Directory struct {
	db     string
	tables map[string]*Table // by configured table name
	log    *slog.Logger
}

// New builds the directories of db's directory-sharded tables (none: an
// empty Directory). Nothing is dialed until the first lookup.
func New(cfg *config.Config, db *config.Database, log *slog.Logger) (*Directory, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &Directory{db: db.Name, tables: map[string]*Table{}, log: log}
	shards := cfg.ShardNames()
	for i := range db.ShardedTables {
		ct := &db.ShardedTables[i]
		if ct.Function != "directory" {
			continue
		}
		t, err := d.newTable(cfg, ct, shards)
		if err != nil {
			return nil, fmt.Errorf("directory of table %q: %w", ct.Table, err)
		}
		d.tables[ct.Table] = t
	}
	return d, nil
}

func (d *Directory) newTable(cfg *config.Config, ct *config.ShardedTable, shards []string) (*Table, error) {
	dc := ct.Directory
	if dc == nil {
		return nil, fmt.Errorf("no directory section")
	}
	typ, err := sharding.ParseType(ct.Type)
	if err != nil {
		return nil, err
	}
	addr := dc.Node
	if a := cfg.NodeAddr(dc.Node); a != "" {
		addr = a
	}
	u := cfg.DirectoryUser(dc)
	if u == nil {
		return nil, fmt.Errorf("no user to connect to %s", dc.Node)
	}
	t := newTable(ct, typ, shards, dc.CacheSize, dc.CacheTTL.D())
	t.node, t.query, t.assignQuery, t.timeout = dc.Node, dc.Query, dc.AssignQuery, dc.Timeout.D()
	if dc.AutoAssign == "hash" {
		// New keys go where a hash-sharded table would put them: never to a spare.
		if t.assign, err = sharding.ForConfig(cfg, &config.ShardedTable{Table: ct.Table, Column: ct.Column, Type: ct.Type, Function: "hash"}); err != nil {
			return nil, err
		}
	}
	t.pool = newConnPool(addr, u.BackendUser(), u.BackendPassword(), dc.Dbname, max(dc.PoolSize, 1))
	t.lookup = d.queryLookup
	return t, nil
}

// newTable builds a Table without its lookup (set by the caller).
func newTable(ct *config.ShardedTable, typ sharding.Type, shards []string, size int, ttl time.Duration) *Table {
	t := &Table{name: ct.Table, column: ct.Column, typ: typ, shards: shards, shardIdx: map[string]int{}}
	for i, s := range shards {
		t.shardIdx[s] = i
	}
	if size > 0 {
		t.cache = expirable.NewLRU[string, int](size, nil, ttl)
	}
	return t
}

// Shard implements sharding.Directory.
func (d *Directory) Shard(ctx context.Context, table string, k sharding.Key) (int, error) {
	t := d.tables[table]
	if t == nil {
		return 0, pgErr(pgwire.InternalError, fmt.Sprintf("table %q has no directory in database %q", table, d.db), "")
	}
	return t.Shard(ctx, k)
}

// Tables lists the directory tables' names, sorted.
func (d *Directory) Tables() []string {
	out := make([]string, 0, len(d.tables))
	for n := range d.tables {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Table returns the directory of one table, nil when it has none.
func (d *Directory) Table(name string) *Table { return d.tables[name] }

// Invalidate drops cached mappings: of every table (table ""), of one
// table (key nil) or of one key. It returns the entries dropped; an
// unknown table is an error.
func (d *Directory) Invalidate(table string, key *string) (int, error) {
	if table == "" {
		n := 0
		for _, t := range d.tables {
			m, _ := t.Invalidate(nil)
			n += m
		}
		return n, nil
	}
	t := d.tables[table]
	for name, tt := range d.tables {
		if t == nil && strings.EqualFold(name, table) { // names fold like unquoted identifiers
			t = tt
		}
	}
	if t == nil {
		return 0, fmt.Errorf("table %q of database %q is not directory-sharded", table, d.db)
	}
	return t.Invalidate(key)
}

// Stats returns every table's counters, sorted by table.
func (d *Directory) Stats() []Stats {
	var out []Stats
	for _, n := range d.Tables() {
		st := d.tables[n].stats()
		st.Database = d.db
		out = append(out, st)
	}
	return out
}

// Close closes the idle lookup connections; lookups still running finish
// and close theirs. A closed Directory keeps answering (dialing anew): old
// sessions may still route with it after a reload.
func (d *Directory) Close() {
	for _, t := range d.tables {
		if t.pool != nil {
			t.pool.close()
		}
	}
}

package router

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgrouter/pgrouter/config"
	"github.com/pgrouter/pgrouter/router/sharding"
)

// memDirectory is the in-memory sharding.Directory of the router tests:
// table → canonical key text → shard name. Unknown keys fail like the real
// directory does (22023); lookups are counted.
type memDirectory struct {
	shards  []string
	types   map[string]sharding.Type
	mu      sync.Mutex
	m       map[string]map[string]string
	lookups atomic.Int64
}

func newMemDirectory(db *config.Database, shards []string, m map[string]map[string]string) *memDirectory {
	d := &memDirectory{shards: shards, types: map[string]sharding.Type{}, m: map[string]map[string]string{}}
	for _, t := range db.ShardedTables {
		typ, _ := sharding.ParseType(t.Type)
		d.types[t.Table] = typ
		d.m[t.Table] = map[string]string{}
	}
	for table, keys := range m {
		for k, s := range keys {
			d.set(table, k, s)
		}
	}
	return d
}

// set maps key (any text form the key type accepts) to shard.
func (d *memDirectory) set(table, key, shard string) {
	k, err := sharding.KeyFromText(d.types[table], []byte(key))
	if err != nil {
		panic(fmt.Sprintf("memDirectory %s %q: %v", table, key, err))
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.m[table] == nil {
		d.m[table] = map[string]string{}
	}
	d.m[table][sharding.KeyText(d.types[table], k)] = shard
}

func (d *memDirectory) Shard(_ context.Context, table string, k sharding.Key) (int, error) {
	d.lookups.Add(1)
	d.mu.Lock()
	name, ok := d.m[table][sharding.KeyText(d.types[table], k)]
	d.mu.Unlock()
	if !ok {
		return 0, &pgconn.PgError{Severity: "ERROR", Code: "22023",
			Message: fmt.Sprintf("no directory mapping for this shard key of table %q", table)}
	}
	i := slices.Index(d.shards, name)
	if i < 0 {
		return 0, &pgconn.PgError{Severity: "ERROR", Code: "22023",
			Message: fmt.Sprintf("directory maps a key of table %q to unknown shard %q (shards: %s)", table, name, strings.Join(d.shards, ", "))}
	}
	return i, nil
}

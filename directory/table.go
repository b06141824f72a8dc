package directory

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
	"golang.org/x/sync/singleflight"

	"github.com/pgrouter/pgrouter/router/sharding"
)

// Table is the directory of one directory-sharded table: its cache, its
// lookups and their counters. Safe for concurrent use.
type Table struct {
	name, column string
	typ          sharding.Type
	shards       []string
	shardIdx     map[string]int
	node         string // for messages: the configured node
	query        string
	assignQuery  string
	assign       sharding.Func // auto_assign: hash; nil = unknown keys are errors
	timeout      time.Duration
	lookup       lookupFunc
	pool         *connPool // nil with an injected lookupFunc

	cache *expirable.LRU[string, int] // nil: cache_size 0
	group singleflight.Group
	gen   atomic.Uint64 // bumped by Invalidate: lookups that started before must not fill the cache

	hits, misses, lookups, lookupErrors, assigned atomic.Uint64
}

// lookupFunc resolves one key (canonical text) to a shard name on the
// directory node. The real one runs the configured queries (query.go);
// cache-mechanics tests inject their own.
type lookupFunc func(ctx context.Context, t *Table, key string, k sharding.Key) (string, error)

// Stats are a table's counters since the Directory was built.
type Stats struct {
	Database, Table string
	Hits, Misses    uint64 // cache
	Lookups         uint64 // lookups run on the directory node (after singleflight)
	LookupErrors    uint64 // lookups that failed, unknown keys included
	Assigned        uint64 // mappings inserted by auto_assign
	Entries         int    // keys cached now
}

// Shard returns the shard index of k: from the cache, or from one lookup
// shared by every concurrent miss of the same key.
func (t *Table) Shard(ctx context.Context, k sharding.Key) (int, error) {
	key := sharding.KeyText(t.typ, k)
	if t.cache != nil {
		if s, ok := t.cache.Get(key); ok {
			t.hits.Add(1)
			return s, nil
		}
	}
	t.misses.Add(1)
	// The key's bytes may alias the caller's buffer: the flight gets its own copy.
	own := sharding.Key{Int: k.Int}
	if k.Bytes != nil {
		own.Bytes = append([]byte(nil), k.Bytes...)
	}
	ch := t.group.DoChan(key, func() (any, error) { return t.resolve(key, own) })
	select {
	case r := <-ch:
		if r.Err != nil {
			return 0, r.Err
		}
		return r.Val.(int), nil
	case <-ctx.Done():
		return 0, t.errLookup("lookup", ctx.Err())
	}
}

// resolve runs one lookup with its own timeout (not the caller's context:
// other callers may share its result) and caches a found mapping unless an
// invalidation happened meanwhile.
func (t *Table) resolve(key string, k sharding.Key) (int, error) {
	gen := t.gen.Load()
	if t.cache != nil { // a flight that just ended may have filled it
		if s, ok := t.cache.Get(key); ok {
			return s, nil
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), t.timeout)
	defer cancel()
	t.lookups.Add(1)
	name, err := t.lookup(ctx, t, key, k)
	if err != nil {
		t.lookupErrors.Add(1)
		return 0, err
	}
	s, ok := t.shardIdx[name]
	if !ok {
		t.lookupErrors.Add(1)
		return 0, t.errUnknownShard(name)
	}
	if t.cache != nil && t.gen.Load() == gen {
		t.cache.Add(key, s)
	}
	return s, nil
}

// Invalidate drops the cached mapping of one key (keyText in any form the
// key type accepts), or every mapping when keyText is nil. It returns the
// number of entries dropped.
func (t *Table) Invalidate(keyText *string) (int, error) {
	t.gen.Add(1)
	if keyText == nil {
		n := 0
		if t.cache != nil {
			n = t.cache.Len()
			t.cache.Purge()
		}
		return n, nil
	}
	k, err := sharding.KeyFromText(t.typ, []byte(*keyText))
	if err != nil {
		return 0, err
	}
	key := sharding.KeyText(t.typ, k)
	t.group.Forget(key)
	if t.cache != nil && t.cache.Remove(key) {
		return 1, nil
	}
	return 0, nil
}

func (t *Table) stats() Stats {
	st := Stats{Table: t.name, Hits: t.hits.Load(), Misses: t.misses.Load(), Lookups: t.lookups.Load(),
		LookupErrors: t.lookupErrors.Load(), Assigned: t.assigned.Load()}
	if t.cache != nil {
		st.Entries = t.cache.Len()
	}
	return st
}

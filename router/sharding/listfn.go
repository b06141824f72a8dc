package sharding

import (
	"fmt"

	"github.com/pgrouter/pgrouter/config"
)

// listFunc places keys by explicit values. One map per key type keeps the
// lookups allocation-free (a string(b) conversion used directly as a map
// index does not allocate).
type listFunc struct {
	common
	ints  map[int64]int
	texts map[string]int
	uuids map[[uuidLen]byte]int
	def   int // -1: unmatched keys are an error
}

func newListFunc(c common, t *config.ShardedTable, idx shardIndex) (Func, error) {
	def, err := idx.defaultShard(t)
	if err != nil {
		return nil, err
	}
	if len(t.Lists) == 0 && def < 0 {
		return nil, fmt.Errorf("table %q: list sharding needs lists or a default", t.Table)
	}
	f := &listFunc{common: c, def: def}
	switch c.typ {
	case TypeInt:
		f.ints = map[int64]int{}
	case TypeText:
		f.texts = map[string]int{}
	case TypeUUID:
		f.uuids = map[[uuidLen]byte]int{}
	}
	for i, le := range t.Lists {
		shard, err := idx.lookup(le.Shard)
		if err != nil {
			return nil, fmt.Errorf("table %q: list %d: %w", t.Table, i+1, err)
		}
		for _, v := range le.Values {
			if err := f.add(v, shard); err != nil {
				return nil, fmt.Errorf("table %q: list %d: %w", t.Table, i+1, err)
			}
		}
	}
	return f, nil
}

// add maps one configured value to shard; a value listed for two different
// shards is a configuration error (listing it twice for one shard is harmless).
func (f *listFunc) add(v string, shard int) error {
	k, err := parseBound(f.typ, v)
	if err != nil {
		return err
	}
	prev, dup := f.lookup(k)
	if dup && prev != shard {
		return fmt.Errorf("value %q is listed for two shards", v)
	}
	switch f.typ {
	case TypeInt:
		f.ints[k.Int] = shard
	case TypeText:
		f.texts[string(k.Bytes)] = shard
	case TypeUUID:
		f.uuids[[uuidLen]byte(k.Bytes)] = shard
	}
	return nil
}

func (f *listFunc) lookup(k Key) (int, bool) {
	var s int
	var ok bool
	switch f.typ {
	case TypeInt:
		s, ok = f.ints[k.Int]
	case TypeText:
		s, ok = f.texts[string(k.Bytes)]
	case TypeUUID:
		s, ok = f.uuids[[uuidLen]byte(k.Bytes)]
	}
	return s, ok
}

// Shard is allocation-free.
func (f *listFunc) Shard(k Key) (int, error) {
	if k.Null {
		return f.null()
	}
	if !validKey(f.typ, k) {
		return 0, errBadKey(f.table, f.typ)
	}
	if s, ok := f.lookup(k); ok {
		return s, nil
	}
	if f.def >= 0 {
		return f.def, nil
	}
	return 0, errUnmatched(f.table, f.typ, "list")
}

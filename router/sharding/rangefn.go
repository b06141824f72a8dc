package sharding

import (
	"fmt"
	"sort"

	"github.com/pgrouter/pgrouter/config"
)

// rangeEntry is one configured [from, to) bound; an open end has has* false.
type rangeEntry struct {
	from, to       Key
	hasFrom, hasTo bool
	shard          int
}

// rangeFunc places keys by sorted, non-overlapping [from, to) ranges.
type rangeFunc struct {
	common
	ranges []rangeEntry // sorted by from, open from first
	def    int          // -1: unmatched keys are an error
}

func newRangeFunc(c common, t *config.ShardedTable, idx shardIndex) (Func, error) {
	def, err := idx.defaultShard(t)
	if err != nil {
		return nil, err
	}
	if len(t.Ranges) == 0 && def < 0 {
		return nil, fmt.Errorf("table %q: range sharding needs ranges or a default", t.Table)
	}
	f := &rangeFunc{common: c, def: def}
	for i, rb := range t.Ranges {
		e, err := parseRange(c.typ, rb, idx)
		if err != nil {
			return nil, fmt.Errorf("table %q: range %d: %w", t.Table, i+1, err)
		}
		f.ranges = append(f.ranges, e)
	}
	sort.Slice(f.ranges, func(i, j int) bool { return f.lowerLess(f.ranges[i], f.ranges[j]) })
	if err := f.checkDisjoint(); err != nil {
		return nil, fmt.Errorf("table %q: %w", t.Table, err)
	}
	return f, nil
}

func parseRange(t Type, rb config.RangeBound, idx shardIndex) (rangeEntry, error) {
	e := rangeEntry{}
	var err error
	if e.shard, err = idx.lookup(rb.Shard); err != nil {
		return e, err
	}
	if rb.From != nil {
		e.hasFrom = true
		if e.from, err = parseBound(t, *rb.From); err != nil {
			return e, fmt.Errorf("from: %w", err)
		}
	}
	if rb.To != nil {
		e.hasTo = true
		if e.to, err = parseBound(t, *rb.To); err != nil {
			return e, fmt.Errorf("to: %w", err)
		}
	}
	if e.hasFrom && e.hasTo && compareKeys(t, e.from, e.to) >= 0 {
		return e, fmt.Errorf("from %q is not below to %q", *rb.From, *rb.To)
	}
	return e, nil
}

// lowerLess orders ranges by lower bound, the open lower bound first.
func (f *rangeFunc) lowerLess(a, b rangeEntry) bool {
	if !a.hasFrom || !b.hasFrom {
		return !a.hasFrom && b.hasFrom
	}
	return compareKeys(f.typ, a.from, b.from) < 0
}

// checkDisjoint rejects overlapping ranges: each range must end (exclusive)
// at or before the next one starts.
func (f *rangeFunc) checkDisjoint() error {
	for i := 1; i < len(f.ranges); i++ {
		prev, cur := f.ranges[i-1], f.ranges[i]
		if !prev.hasTo || !cur.hasFrom || compareKeys(f.typ, prev.to, cur.from) > 0 {
			return fmt.Errorf("ranges overlap: %s and %s", f.describe(prev), f.describe(cur))
		}
	}
	return nil
}

func (f *rangeFunc) describe(e rangeEntry) string {
	s := func(has bool, k Key) string {
		switch {
		case !has:
			return "open"
		case f.typ == TypeInt:
			return fmt.Sprint(k.Int)
		case f.typ == TypeUUID:
			return fmt.Sprintf("%x", k.Bytes)
		}
		return fmt.Sprintf("%q", k.Bytes)
	}
	return "[" + s(e.hasFrom, e.from) + ", " + s(e.hasTo, e.to) + ")"
}

// Shard finds the last range starting at or below k by binary search and
// checks k is below its end. Allocation-free.
func (f *rangeFunc) Shard(k Key) (int, error) {
	if k.Null {
		return f.null()
	}
	if !validKey(f.typ, k) {
		return 0, errBadKey(f.table, f.typ)
	}
	// First range whose lower bound is above k; an open lower bound never is.
	lo, hi := 0, len(f.ranges)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		r := &f.ranges[m]
		if r.hasFrom && compareKeys(f.typ, r.from, k) > 0 {
			hi = m
		} else {
			lo = m + 1
		}
	}
	if lo > 0 {
		r := &f.ranges[lo-1]
		if !r.hasTo || compareKeys(f.typ, k, r.to) < 0 {
			return r.shard, nil
		}
	}
	if f.def >= 0 {
		return f.def, nil
	}
	return 0, errUnmatched(f.table, f.typ, "range")
}

package merge

import (
	"bytes"
	"fmt"
	"sort"
)

// aggState accumulates one output column of one group.
type aggState struct {
	has     bool   // pass/min/max: raw holds a value; sum/bool: a non-NULL partial seen
	raw     []byte // pass, min, max: the chosen cell (own copy)
	val     value  // min/max: decoded raw; sum/bool accumulator
	n       int64  // count, avg count
	members map[string]struct{}
}

// group is one GROUP BY key's accumulated state.
type group struct {
	states []aggState
}

// resultType is the type of output column o as the client sees it, given
// the shard columns fs.
func (ap *aggPlan) resultType(o outCol, fs []field) (uint32, error) {
	src := fs[o.src].typeOID
	switch o.fn {
	case fnCount, fnCountDistinct:
		return oidInt8, nil
	case fnBoolAnd, fnBoolOr:
		return oidBool, nil
	case fnSum:
		switch src {
		case oidInt8, oidNumeric, oidFloat4, oidFloat8:
			return src, nil
		}
		return 0, unsupported(fmt.Sprintf("sum() of %s", typeName(src)), "")
	case fnAvg:
		switch src {
		case oidInt8, oidNumeric:
			return oidNumeric, nil
		case oidFloat8:
			return oidFloat8, nil
		case oidFloat4:
			return 0, unsupported("avg() of real", "write avg(x::float8)")
		}
		return 0, unsupported(fmt.Sprintf("avg() of %s", typeName(src)), "")
	}
	return src, nil
}

// runAggregate combines the shards' partial groups, then applies HAVING,
// ORDER BY, DISTINCT and LIMIT. It buffers every group.
func (p *Plan) runAggregate(cols []column, formats []int16, src []Source, out *sink) error {
	ap := p.agg
	fs := make([]field, len(cols))
	for i, c := range cols {
		fs[i] = field{name: c.name, typeOID: c.oid}
	}
	types := make([]uint32, len(ap.outs))
	for i, o := range ap.outs {
		t, err := ap.resultType(o, fs)
		if err != nil {
			return err
		}
		types[i] = t
		if err := ap.checkInputs(o, cols); err != nil {
			return err
		}
	}
	for _, g := range ap.groupCols {
		if err := cols[g].checkComparable("GROUP BY"); err != nil {
			return err
		}
	}
	groups, err := ap.combine(cols, src)
	if err != nil {
		return err
	}
	rows, err := ap.finish(groups, cols, types, formats, p.needValues(), out.efd)
	if err != nil {
		return err
	}
	if len(p.sort) > 0 {
		sort.SliceStable(rows, func(i, j int) bool {
			return cmpKeys(p.sort, rows[i].sortVals(p.sort), rows[j].sortVals(p.sort)) < 0
		})
	}
	for _, r := range rows {
		if out.full() {
			break
		}
		if err := out.push(r.cells[:ap.visible], func() ([]byte, error) { return r.key(ap.visible) }); err != nil {
			return err
		}
	}
	return nil
}

// checkInputs refuses partial-aggregate columns the engine cannot read.
func (ap *aggPlan) checkInputs(o outCol, cols []column) error {
	c := cols[o.src]
	switch o.fn {
	case fnMin, fnMax, fnCountDistinct:
		return c.checkComparable(map[aggFn]string{fnMin: "min()", fnMax: "max()", fnCountDistinct: "count(DISTINCT …)"}[o.fn])
	}
	return nil
}

// combine reads every shard row into its group.
func (ap *aggPlan) combine(cols []column, src []Source) ([]*group, error) {
	index := map[string]*group{}
	var groups []*group
	var cells [][]byte
	var key []byte
	for _, s := range src {
		for {
			var ok bool
			var err error
			if cells, ok, err = nextRow(s, len(cols), cells); err != nil {
				return nil, err
			} else if !ok {
				break
			}
			key = key[:0]
			for _, g := range ap.groupCols {
				v, err := decode(cols[g], cells[g])
				if err != nil {
					return nil, err
				}
				key = appendKey(key, v)
			}
			g := index[string(key)]
			if g == nil {
				g = &group{states: make([]aggState, len(ap.outs))}
				index[string(key)] = g
				groups = append(groups, g)
			}
			for i, o := range ap.outs {
				if err := g.states[i].add(o, cols, cells); err != nil {
					return nil, err
				}
			}
		}
	}
	if len(groups) == 0 && ap.global {
		groups = append(groups, &group{states: make([]aggState, len(ap.outs))})
	}
	return groups, nil
}

// add folds one partial row into the state of output o.
func (st *aggState) add(o outCol, cols []column, cells [][]byte) error {
	cell := cells[o.src]
	switch o.fn {
	case fnPass:
		if !st.has {
			st.raw, st.has = bytes.Clone(cell), true
		}
		return nil
	case fnCount:
		return st.addCount(cols[o.src], cell)
	case fnAvg:
		if err := st.addCount(cols[o.src2], cells[o.src2]); err != nil {
			return err
		}
	}
	if cell == nil {
		return nil // NULL partials: no input rows (or only NULLs) on that shard
	}
	if o.fn == fnMin || o.fn == fnMax {
		v, err := decode(cols[o.src], cell)
		if err != nil {
			return err
		}
		better := !st.has
		if st.has {
			c := compare(v, st.val)
			better = (o.fn == fnMin && c < 0) || (o.fn == fnMax && c > 0)
		}
		if better {
			st.raw, st.has = bytes.Clone(cell), true
			st.val, err = decode(cols[o.src], st.raw) // v aliases the shard's row buffer
		}
		return err
	}
	v, err := decode(cols[o.src], cell)
	if err != nil {
		return err
	}
	switch o.fn {
	case fnCountDistinct:
		if st.members == nil {
			st.members = map[string]struct{}{}
		}
		st.members[string(appendKey(nil, v))] = struct{}{}
	case fnSum, fnAvg:
		return st.addSum(v, cols[o.src].oid)
	case fnBoolAnd, fnBoolOr:
		if !st.has {
			st.val, st.has = v, true
		} else if (o.fn == fnBoolAnd) == (v.i == 0) {
			st.val.i = v.i
		}
	}
	return nil
}

// addCount adds a partial count (int8).
func (st *aggState) addCount(c column, cell []byte) error {
	if cell == nil {
		return nil
	}
	v, err := decode(c, cell)
	if err != nil {
		return err
	}
	st.n += v.i
	return nil
}

// addSum adds a non-NULL partial sum with the arithmetic of its type.
func (st *aggState) addSum(v value, oid uint32) error {
	if !st.has {
		st.val, st.has = v, true
		return nil
	}
	switch v.k {
	case kindInt:
		s := st.val.i + v.i
		if (s > st.val.i) != (v.i > 0) {
			return pgErr(codeNumericOutOfRange, "", "bigint out of range")
		}
		st.val.i = s
	case kindNumeric:
		st.val.d = st.val.d.add(v.d)
	case kindFloat:
		if oid == oidFloat4 {
			st.val.f = float64(float32(st.val.f) + float32(v.f))
		} else {
			st.val.f += v.f
		}
	default:
		return unsupported("sum() of "+typeName(oid), "")
	}
	return nil
}

// outRow is one finished group: a cell (client encoding, visible columns)
// and a value for every output column.
type outRow struct {
	cells  [][]byte
	vals   []value
	sorted []value
}

func (r *outRow) sortVals(keys []sortKey) []value {
	if r.sorted == nil {
		r.sorted = make([]value, len(keys))
		for i, k := range keys {
			r.sorted[i] = r.vals[k.col]
		}
	}
	return r.sorted
}

func (r *outRow) key(n int) ([]byte, error) {
	var k []byte
	for _, v := range r.vals[:n] {
		k = appendKey(k, v)
	}
	return k, nil
}

// finish computes each group's final values and applies HAVING.
func (ap *aggPlan) finish(groups []*group, cols []column, types []uint32, formats []int16, needValues []bool, efd int) ([]*outRow, error) {
	rows := make([]*outRow, 0, len(groups))
	needVal := needValues
	// One allocation each for the rows, their cells and their values,
	// rather than three per group.
	n := len(ap.outs)
	slab := make([]outRow, len(groups))
	cells := make([][]byte, len(groups)*n)
	vals := make([]value, len(groups)*n)
	for gi, g := range groups {
		r := &slab[gi]
		r.cells = cells[gi*n : (gi+1)*n : (gi+1)*n]
		r.vals = vals[gi*n : (gi+1)*n : (gi+1)*n]
		for i, o := range ap.outs {
			st := &g.states[i]
			if o.fn == fnPass || o.fn == fnMin || o.fn == fnMax {
				r.cells[i] = st.raw
				if needVal[i] {
					c := cols[o.src]
					if err := c.checkComparable("ORDER BY, HAVING or DISTINCT"); err != nil {
						return nil, err
					}
					v, err := decode(c, st.raw)
					if err != nil {
						return nil, err
					}
					r.vals[i] = v
				}
				continue
			}
			v := st.final(o, types[i])
			r.vals[i] = v
			if i < ap.visible {
				cell, err := encodeValue(v, types[i], formatOf(formats, i), efd)
				if err != nil {
					return nil, err
				}
				r.cells[i] = cell
			}
		}
		keep := true
		for _, h := range ap.having {
			ok, err := h.holds(r.vals[h.out], types[h.out])
			if err != nil {
				return nil, err
			}
			keep = keep && ok
		}
		if keep {
			rows = append(rows, r)
		}
	}
	return rows, nil
}

// needValues marks the outputs whose values must be decoded: those that
// ORDER BY, HAVING or DISTINCT look at.
func (p *Plan) needValues() []bool {
	ap := p.agg
	need := make([]bool, len(ap.outs))
	for _, k := range p.sort {
		need[k.col] = true
	}
	for _, h := range ap.having {
		need[h.out] = true
	}
	for i := 0; i < ap.visible && p.distinct; i++ {
		need[i] = true
	}
	return need
}

// final is the aggregate's result for the group.
func (st *aggState) final(o outCol, oid uint32) value {
	switch o.fn {
	case fnCount:
		return value{k: kindInt, i: st.n}
	case fnCountDistinct:
		return value{k: kindInt, i: int64(len(st.members))}
	case fnSum, fnBoolAnd, fnBoolOr:
		if !st.has {
			return value{null: true, k: kindOf(oid)}
		}
		return st.val
	case fnAvg:
		if st.n == 0 || !st.has {
			return value{null: true, k: kindOf(oid)}
		}
		if oid == oidFloat8 {
			return value{k: kindFloat, f: st.val.f / float64(st.n)}
		}
		sum := st.val.d
		if st.val.k == kindInt {
			sum = decimalFromInt(st.val.i)
		}
		return value{k: kindNumeric, d: sum.divCount(st.n)}
	}
	return value{null: true}
}

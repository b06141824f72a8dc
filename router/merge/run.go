package merge

import (
	"fmt"
)

// Run merges the shard results. descs[i] is the RowDescription body shard i
// sent (all must describe the same columns: names, types, typmods; their
// format codes are ignored); formats are the result format codes the client
// asked for (nil or empty = all text, one code = that code for every
// column, else one per client column) and src[i] yields shard i's DataRow
// bodies, encoded as ShardFormats(formats) asked. Run returns the client's
// RowDescription body (hidden helper columns removed, computed columns
// retyped, format codes set) and calls emit with each output DataRow body;
// emit may keep the slice only until it returns. rows is the number of rows
// emitted (for CommandComplete "SELECT n"). Errors meant for the client are
// *pgconn.PgError; the RowDescription is only valid when err is nil.
func (p *Plan) Run(descs [][]byte, formats []int16, src []Source, emit func(row []byte) error) (clientDesc []byte, rows int64, err error) {
	return p.RunWith(Options{ExtraFloatDigits: 1}, descs, formats, src, emit)
}

// Options are the client's session settings that shape computed values.
type Options struct {
	// ExtraFloatDigits is the client's extra_float_digits: at 1 or more
	// (Postgres's default) computed floats print in their shortest exact
	// form, at 0 or less with 15 (float4: 6) plus it significant digits.
	ExtraFloatDigits int
}

// RunWith is Run for a client whose session settings are o.
func (p *Plan) RunWith(o Options, descs [][]byte, formats []int16, src []Source, emit func(row []byte) error) (clientDesc []byte, rows int64, err error) {
	if len(src) == 0 || len(descs) != len(src) {
		return nil, 0, fmt.Errorf("merge: %d row descriptions for %d sources", len(descs), len(src))
	}
	cols, err := p.columns(descs, formats)
	if err != nil {
		return nil, 0, err
	}
	clientDesc, err = p.ClientDesc(descs[0], formats)
	if err != nil {
		return nil, 0, err
	}
	out := &sink{plan: p, cols: cols[:len(cols)-p.hidden], emit: emit, efd: o.ExtraFloatDigits}
	if p.distinct {
		out.seen = make(map[string]struct{})
	}
	switch p.mode {
	case modeConcat:
		err = p.runConcat(cols, src, out)
	case modeMergeSort:
		err = p.runMergeSort(cols, src, out)
	default:
		err = p.runAggregate(cols, formats, src, out)
	}
	if err != nil {
		return nil, out.rows, err
	}
	return clientDesc, out.rows, nil
}

// ShardFormats gives the result format codes to Bind ShardSQL with, for a
// client that asked for formats: the client's codes, extended with text for
// the hidden helper columns when the client gave one code per column.
func (p *Plan) ShardFormats(formats []int16) []int16 {
	if len(formats) <= 1 || p.hidden == 0 {
		return formats
	}
	out := make([]int16, len(formats)+p.hidden)
	copy(out, formats)
	return out
}

// columns checks that every shard describes the same columns and returns
// them with the formats their values arrive in.
func (p *Plan) columns(descs [][]byte, formats []int16) ([]column, error) {
	first, err := parseRowDesc(descs[0])
	if err != nil {
		return nil, err
	}
	for i, d := range descs[1:] {
		fs, err := parseRowDesc(d)
		if err != nil {
			return nil, err
		}
		if !sameColumns(first, fs) {
			return nil, pgErr(codeInternal, "check that every shard has the same schema",
				"shards returned different result columns (shard 0 and shard %d)", i+1)
		}
	}
	if len(first) < p.hidden || (p.agg != nil && len(first) < p.agg.visible) {
		return nil, fmt.Errorf("merge: shards returned %d columns, plan needs more", len(first))
	}
	shardFormats := p.ShardFormats(formats)
	cols := make([]column, len(first))
	for i, f := range first {
		cols[i] = column{name: f.name, oid: f.typeOID, format: formatOf(shardFormats, i), kind: kindOf(f.typeOID)}
	}
	return cols, nil
}

// ClientDesc turns a RowDescription body of ShardSQL (from a Describe on a
// shard) into the one the client must see: hidden columns removed, computed
// columns (avg, count(DISTINCT …)) retyped, format codes set from formats
// (nil for a statement Describe: all zero).
func (p *Plan) ClientDesc(shardDesc []byte, formats []int16) ([]byte, error) {
	fs, err := parseRowDesc(shardDesc)
	if err != nil {
		return nil, err
	}
	if len(fs) < p.hidden {
		return nil, fmt.Errorf("merge: shard returned %d columns, plan hides %d", len(fs), p.hidden)
	}
	fs = fs[:len(fs)-p.hidden]
	for i := range fs {
		if p.agg != nil && i < len(p.agg.outs) {
			oid, err := p.agg.resultType(p.agg.outs[i], fs)
			if err != nil {
				return nil, err
			}
			if oid != fs[i].typeOID {
				fs[i].typeOID, fs[i].typmod, fs[i].tableOID, fs[i].attnum = oid, -1, 0, 0
				fs[i].typlen = map[uint32]int16{oidInt8: 8, oidFloat8: 8, oidNumeric: -1}[oid]
			}
		}
		fs[i].format = formatOf(formats, i)
	}
	return encodeRowDesc(fs), nil
}

// sink applies DISTINCT, OFFSET and LIMIT to the merged rows, strips the
// hidden columns and emits.
type sink struct {
	plan    *Plan
	cols    []column // the visible columns (for DISTINCT keys)
	seen    map[string]struct{}
	skipped int64
	rows    int64
	emit    func([]byte) error
	buf     []byte
	efd     int // the client's extra_float_digits (Options)
}

// full reports that LIMIT is reached: no more rows are needed.
func (s *sink) full() bool {
	return s.plan.limit >= 0 && s.rows >= s.plan.limit
}

// push offers one row of visible cells; key builds its DISTINCT key.
func (s *sink) push(cells [][]byte, key func() ([]byte, error)) error {
	if s.seen != nil {
		k, err := key()
		if err != nil {
			return err
		}
		if _, dup := s.seen[string(k)]; dup {
			return nil
		}
		s.seen[string(k)] = struct{}{}
	}
	if s.skipped < s.plan.offset {
		s.skipped++
		return nil
	}
	s.buf = appendRow(s.buf[:0], cells)
	s.rows++
	return s.emit(s.buf)
}

// rowKey is the DISTINCT key of raw visible cells.
func (s *sink) rowKey(cells [][]byte) ([]byte, error) {
	var k []byte
	for i, c := range cells {
		if err := s.cols[i].checkComparable("SELECT DISTINCT"); err != nil {
			return nil, err
		}
		v, err := decode(s.cols[i], c)
		if err != nil {
			return nil, err
		}
		k = appendKey(k, v)
	}
	return k, nil
}

// nextRow reads and splits one row of src, checking its width.
func nextRow(src Source, ncols int, cells [][]byte) ([][]byte, bool, error) {
	row, ok, err := src.Next()
	if err != nil || !ok {
		return nil, false, err
	}
	cells, err = splitRow(row, cells)
	if err != nil {
		return nil, false, err
	}
	if len(cells) != ncols {
		return nil, false, fmt.Errorf("merge: row has %d columns, RowDescription %d", len(cells), ncols)
	}
	return cells, true, nil
}

// runConcat streams the shards one after the other.
func (p *Plan) runConcat(cols []column, src []Source, out *sink) error {
	visible := len(cols) - p.hidden
	var cells [][]byte
	for _, s := range src {
		for !out.full() {
			var ok bool
			var err error
			cells, ok, err = nextRow(s, len(cols), cells)
			if err != nil {
				return err
			}
			if !ok {
				break
			}
			vis := cells[:visible]
			if err := out.push(vis, func() ([]byte, error) { return out.rowKey(vis) }); err != nil {
				return err
			}
		}
	}
	return nil
}

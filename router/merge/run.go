package merge

// Run merges the shard results. descs[i] is the RowDescription body shard i
// sent (all must describe the same columns: names, types, typmods); formats
// are the result format codes the client asked for (nil or empty = all
// text, one code = that code for every column, else one per client column)
// and src[i] yields shard i's DataRow bodies, encoded as ShardFormats(formats)
// asked. Run returns the client's RowDescription body (hidden helper columns
// removed, computed columns retyped, format codes set) and calls emit with
// each output DataRow body; emit may keep the slice only until it returns.
// rows is the number of rows emitted (for CommandComplete "SELECT n").
// Errors meant for the client are *pgconn.PgError.
func (p *Plan) Run(descs [][]byte, formats []int16, src []Source, emit func(row []byte) error) (clientDesc []byte, rows int64, err error) {
	return nil, 0, unsupported("merge (not yet implemented)", "")
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

// ClientDesc turns a RowDescription body of ShardSQL (from a Describe on a
// shard) into the one the client must see: hidden columns removed, computed
// columns (avg, count(DISTINCT …)) retyped, format codes set from formats
// (nil for a statement Describe: all zero).
func (p *Plan) ClientDesc(shardDesc []byte, formats []int16) ([]byte, error) {
	return nil, unsupported("merge (not yet implemented)", "")
}

package merge

// Source yields one shard's DataRow bodies (raw protocol bytes as Postgres
// sent them: int16 column count, then per column an int32 length, -1 for
// NULL, and the value bytes), in the formats ShardFormats asked for. ok is
// false once the shard's rows are exhausted. Run may stop calling Next
// before a source is exhausted (LIMIT reached, error): draining or
// cancelling the shard's query is then the caller's job.
type Source interface {
	Next() (row []byte, ok bool, err error)
}

// Plan says how to turn the per-shard results of one SELECT into exactly
// what a single Postgres holding all rows returns. A Plan is immutable after
// Analyze and safe for concurrent Run calls (it can live in a plan cache).
type Plan struct {
	// ShardSQL is the statement to send to every shard. Parameters ($n)
	// are those of the original statement, unchanged.
	ShardSQL string

	mode     mode      // how rows are combined
	hidden   int       // trailing ShardSQL columns the client never sees
	sort     []sortKey // final ORDER BY, on output columns (visible or hidden)
	limit    int64     // -1: none
	offset   int64
	distinct bool     // SELECT DISTINCT: final dedup on the visible columns
	agg      *aggPlan // mode == modeAggregate
}

type mode int

const (
	modeConcat    mode = iota // no ORDER BY: shard streams one after the other
	modeMergeSort             // ORDER BY: streaming k-way merge of sorted shard streams
	modeAggregate             // aggregates and/or GROUP BY: combine, then sort
)

// sortKey is one ORDER BY item, resolved to a column of the shard rows
// (aggregate mode: an output column). A negative col -n is the n-th hidden
// column, whose index is known only once the RowDescription is.
type sortKey struct {
	col        int
	desc       bool
	nullsFirst bool
}

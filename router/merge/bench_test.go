package merge

import (
	"strconv"
	"testing"
)

// The benchmarks mirror test/bench's cross-shard scenarios (xs_*.sql): 4
// shards, ORDER BY x, k LIMIT 10 (10 rows per shard) and GROUP BY g with
// 100 groups (100 partial rows per shard), text results.

const (
	benchOrderSQL = "SELECT k, x FROM xs ORDER BY x, k LIMIT 10"
	benchGroupSQL = "SELECT g, count(*) FROM xs GROUP BY g"
	benchShards   = 4
)

func BenchmarkAnalyzeOrderLimit(b *testing.B) { benchAnalyze(b, benchOrderSQL) }
func BenchmarkAnalyzeGroupCount(b *testing.B) { benchAnalyze(b, benchGroupSQL) }

func benchAnalyze(b *testing.B, sql string) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Analyze(sql); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRunOrderLimit(b *testing.B) {
	desc := textDesc(col("k", oidInt8), col("x", oidInt4))
	shards := make([][][]byte, benchShards)
	for s := range shards {
		for i := range 10 {
			k := int64(i*benchShards + s)
			shards[s] = append(shards[s], textRow(strconv.FormatInt(k, 10), strconv.FormatInt(k/3, 10)))
		}
	}
	benchRun(b, benchOrderSQL, desc, shards, 10)
}

func BenchmarkRunGroupCount(b *testing.B) {
	desc := textDesc(col("g", oidInt4), col("count", oidInt8))
	shards := make([][][]byte, benchShards)
	for s := range shards {
		for g := range 100 {
			shards[s] = append(shards[s], textRow(strconv.Itoa(g), "250"))
		}
	}
	benchRun(b, benchGroupSQL, desc, shards, 100)
}

func benchRun(b *testing.B, sql string, desc []byte, shards [][][]byte, want int64) {
	p, err := Analyze(sql)
	if err != nil {
		b.Fatal(err)
	}
	descs := make([][]byte, len(shards))
	srcs := make([]sliceSource, len(shards))
	ifaces := make([]Source, len(shards))
	for i := range shards {
		descs[i] = desc
		ifaces[i] = &srcs[i]
	}
	b.ReportAllocs()
	for b.Loop() {
		for i := range srcs {
			srcs[i] = sliceSource{rows: shards[i]}
		}
		_, n, err := p.Run(descs, nil, ifaces, func([]byte) error { return nil })
		if err != nil || n != want {
			b.Fatalf("Run: %d rows, %v", n, err)
		}
	}
}

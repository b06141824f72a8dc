package reshard

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgrouter/pgrouter/router/sharding"
)

// verifyBuckets is how many key ranges (buckets of the key's hash) verify
// compares; only differing buckets are then compared key by key.
const verifyBuckets = 16

// maxNamed bounds the differing keys an error names.
const maxNamed = 10

// verifyMove compares the moving rows of m on the source with the target:
// per bucket a row count and an md5 over the rows in key order; where a
// bucket differs, the rows' md5 key by key, naming the keys that differ.
func verifyMove(ctx context.Context, src, dst *pgconn.PgConn, t *table, m sharding.Move) error {
	sum := fmt.Sprintf("SELECT %s::text, count(*)::text, md5(string_agg(md5(ROW(%s)::text), '' ORDER BY %s)) FROM %s WHERE %s GROUP BY 1",
		bucketOf(m, verifyBuckets), t.colList(), t.pkList(), t.name, m.Where)
	a, err := query(ctx, src, sum)
	if err != nil {
		return fmt.Errorf("verify on source %s: %w", m.From, err)
	}
	b, err := query(ctx, dst, sum)
	if err != nil {
		return fmt.Errorf("verify on target %s: %w", m.To, err)
	}
	differ := diff(byFirst(a), byFirst(b))
	if len(differ) == 0 {
		return nil
	}
	keys, err := differingKeys(ctx, src, dst, t, m, differ)
	if err != nil {
		return err
	}
	return fmt.Errorf("verify: table %s, %s → %s: %d key(s) differ between source and target (%s): cutover refused",
		t.name, m.From, m.To, len(keys), namedKeys(keys))
}

// byFirst maps each row's first column to the rest.
func byFirst(rows [][]string) map[string]string {
	out := make(map[string]string, len(rows))
	for _, r := range rows {
		out[r[0]] = strings.Join(r[1:], "/")
	}
	return out
}

// differingKeys lists the primary keys whose rows differ (or exist on one
// side only) within the given buckets.
func differingKeys(ctx context.Context, src, dst *pgconn.PgConn, t *table, m sharding.Move, buckets []string) ([]string, error) {
	rows := fmt.Sprintf("SELECT ROW(%s)::text, md5(ROW(%s)::text) FROM %s WHERE (%s) AND %s IN (%s)",
		t.pkList(), t.colList(), t.name, m.Where, bucketOf(m, verifyBuckets), strings.Join(buckets, ", "))
	a, err := query(ctx, src, rows)
	if err != nil {
		return nil, fmt.Errorf("verify on source %s: %w", m.From, err)
	}
	b, err := query(ctx, dst, rows)
	if err != nil {
		return nil, fmt.Errorf("verify on target %s: %w", m.To, err)
	}
	return diff(byFirst(a), byFirst(b)), nil
}

// diff lists, sorted, the names whose values differ or that one side lacks.
func diff(a, b map[string]string) []string {
	var out []string
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			out = append(out, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

func namedKeys(keys []string) string {
	if len(keys) > maxNamed {
		return "keys " + strings.Join(keys[:maxNamed], ", ") + fmt.Sprintf(" and %d more", len(keys)-maxNamed)
	}
	return "keys " + strings.Join(keys, ", ")
}

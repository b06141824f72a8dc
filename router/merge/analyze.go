package merge

// Analyze plans sql: a single SELECT on sharded tables that the router
// already decided must run on several shards. Shapes the engine cannot merge
// exactly return *pgconn.PgError with Code 0A000 naming the construct.
func Analyze(sql string) (*Plan, error) {
	return nil, unsupported("merge (not yet implemented)", "")
}

// aggPlan is the aggregate part of a Plan.
type aggPlan struct{}

package router

import "fmt"

// applyHints reads the comment hints of a text into its plan.
func (r *Router) applyHints(p *Plan, sql string, tables []*shardedTable) {
	a := p.a
	h, err := scanHints(sql)
	if err != nil {
		if a.err == nil {
			a.err = err
		}
		return
	}
	if (h.hasShard || h.hasKey) && !r.shardHints {
		a.err = shardHintsOff("the /* pgrouter: shard=… */ and /* pgrouter: key=… */ hints are")
		return
	}
	if h.role != "" {
		a.hasRole = true
		if h.role == "primary" {
			a.hintRole = RolePrimary
		}
	}
	if h.hasShard {
		i, ok := r.shardIdx[h.shard]
		if !ok {
			a.err = pgError(codeInvalidParameter, fmt.Sprintf("pgrouter hint names unknown shard %q", h.shard),
				"Available shards: "+joinNames(r.shardNames)+".")
			return
		}
		a.hintShard, a.hintReason = i, "hint shard="+h.shard
	}
	if h.hasKey {
		t, err := r.hintTable(tables)
		if err != nil {
			a.err = err
			return
		}
		a.hintKey = true
		a.hintReason = "hint key=" + h.key + " (sharding of " + t.display + ")"
		if t.directory { // looked up when routed: the directory may change
			a.hintKeyDir, a.hintKeyTxt = t, []byte(h.key)
			return
		}
		k, err := keyFromText(t, []byte(h.key))
		if err == nil {
			var s int
			if s, err = t.fn.Shard(k); err == nil {
				a.hintKeySet = Only(s)
			}
		}
		a.hintKeyErr = err
		a.hintReason = "hint key=" + h.key + " (sharding of " + t.display + ")"
	}
}

// hintTable is the table whose sharding a key hint uses: the statement's
// sharded tables (all co-located), else the first configured one.
func (r *Router) hintTable(tables []*shardedTable) (*shardedTable, error) {
	if len(tables) == 0 {
		if len(r.tables) == 0 {
			return nil, pgError(codeInvalidParameter, "pgrouter key hint used but the database has no sharded tables", "")
		}
		return r.tables[0], nil
	}
	for _, t := range tables[1:] {
		if t.coloc != tables[0].coloc {
			return nil, pgError(codeFeatureNotSupported,
				fmt.Sprintf("pgrouter key hint is ambiguous: tables %q and %q are sharded differently", tables[0].display, t.display),
				"use /* pgrouter: shard=NAME */")
		}
	}
	return tables[0], nil
}

func joinNames(names []string) string {
	s := ""
	for i, n := range names {
		if i > 0 {
			s += ", "
		}
		s += n
	}
	return s
}

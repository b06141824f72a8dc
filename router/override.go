package router

import (
	"fmt"
	"strings"
)

// A hint (shard=, key=) or SET pgrouter.shard chooses the shard of a
// statement that has no shard key of its own. A write that does have one
// must not go anywhere else: the same primary key would then exist on two
// shards and keyed queries would never find the stray row. checkOverride
// refuses such a write, naming the chosen shard and the key's.

// checkOverride returns an error when p writes and its own shard keys (or
// the configured shard of an unlisted table) place it outside chosen.
func (r *Router) checkOverride(p *Plan, args *Args, chosen ShardSet, by string) error {
	if p.Role != RolePrimary {
		return nil // a read on the chosen shard changes nothing
	}
	for _, sp := range p.a.stmts {
		if sp.kind == spErr && sp.keyUnsure {
			return sp.err // the hint cannot place rows whose keys are unknown
		}
		own, what := r.ownShards(sp, args)
		if own != 0 && own != chosen {
			return pgError(codeInvalidParameter,
				fmt.Sprintf("pgrouter %s sends this write to shard %s, but %s places it on shard %s",
					by, r.setNames(chosen), what, r.setNames(own)),
				"remove the hint: a statement with a shard key is routed by its key (a row written on another shard would be invisible to keyed queries)")
		}
	}
	return nil
}

// ownShards is where one statement's own keys or placement put it (0 when
// they say nothing: no key, a key not restricted, or a key that cannot be
// evaluated — the hint then decides, as it did before) and what decided.
func (r *Router) ownShards(sp *stmtPlan, args *Args) (ShardSet, string) {
	switch {
	case sp.kind == spFixed && !sp.multi:
		return sp.set, sp.reason
	case sp.kind != spKeyed:
		return 0, ""
	}
	var own ShardSet
	what := ""
	for gi := range sp.groups {
		set, known, err := r.evalGroup(sp, gi, args)
		if err != nil || !known {
			continue
		}
		own |= set
		if what == "" {
			g := &sp.groups[gi]
			what = "its shard key " + g.t.display + "." + g.t.column
		}
	}
	if sp.onlyShard >= 0 && own != 0 {
		own |= Only(sp.onlyShard)
	}
	if sp.updVal >= 0 { // UPDATE … SET key = v: the rows' new shard
		g := &sp.groups[sp.updGroup]
		if set, err := r.valSet(&sp.vals[sp.updVal], g.t, args); err == nil && set != 0 {
			own |= set
			if what == "" {
				what = "its new shard key " + g.t.display + "." + g.t.column
			}
		}
	}
	return own, what
}

// setNames renders a shard set as "s1" or "s0, s2".
func (r *Router) setNames(s ShardSet) string {
	var names []string
	s.Each(func(i int) { names = append(names, r.shardNames[i]) })
	return strings.Join(names, ", ")
}

// shardHintsOff is the error for a shard choice by the client when
// routing.allow_shard_hints is false.
func shardHintsOff(what string) error {
	return pgError(codeFeatureNotSupported, what+" disabled: pgrouter routes by shard key only",
		"routing.allow_shard_hints is false in the pgrouter configuration")
}

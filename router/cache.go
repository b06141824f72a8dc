package router

import (
	"strings"
	"unsafe"
)

// Prepare plans a statement text (extended protocol: once at Parse). Plans
// are cached by text; a Plan never changes once built.
func (r *Router) Prepare(sql string) (*Plan, error) {
	if nr := r.moved(); nr != nil {
		return nr.Prepare(sql)
	}
	if p, ok := r.plans.Get(sql); ok {
		r.hits.Add(1)
		return p, nil
	}
	r.misses.Add(1)
	// The caller's string may alias a reused buffer, and the plan keeps
	// substrings of the text it was built from (SET values, hints): build
	// from the copy that the cache keeps.
	sql = strings.Clone(sql)
	p, _, _ := r.buildPlan(sql)
	r.plans.Add(sql, p)
	return p, nil
}

// PrepareFor is Prepare for a statement text of session s: with
// standard_conforming_strings off the text is planned as the backend will
// lex it.
func (r *Router) PrepareFor(sql string, s Session) (*Plan, error) {
	if s.NonStandardStrings {
		std, err := backendText(sql, true)
		if err != nil {
			return errorPlan(err), nil
		}
		sql = std
	}
	return r.Prepare(sql)
}

// errorPlan is a plan whose every route fails with err.
func errorPlan(err error) *Plan {
	return &Plan{Role: RolePrimary, a: &analysis{err: err, hintShard: -1}}
}

// RouteSimple plans (via the cache, with inline literals normalised) and
// routes a simple-protocol query string, which may hold several statements.
// sc is the session's scratch memory (nil allocates a fresh one).
func (r *Router) RouteSimple(sql string, s Session, sc *Scratch) (*Plan, Route, error) {
	if nr := r.moved(); nr != nil {
		return nr.RouteSimple(sql, s, sc)
	}
	p, rt, err := r.routeSimple(sql, s, sc)
	if r.hold != nil {
		if nr := r.moved(); nr != nil {
			// A cutover switched while the statement waited at its gate: the
			// plan must be the successor's too (its CopyPlan splits rows).
			return nr.RouteSimple(sql, s, sc)
		}
	}
	return p, rt, err
}

func (r *Router) routeSimple(sql string, s Session, sc *Scratch) (*Plan, Route, error) {
	if sc == nil {
		sc = &Scratch{}
	}
	if s.NonStandardStrings {
		std, err := backendText(sql, true)
		if err != nil {
			return errorPlan(err), Route{}, err
		}
		sql = std
	}
	if normalise(sql, sc) {
		key := unsafe.String(unsafe.SliceData(sc.buf), len(sc.buf)) // not retained by Get
		if p, ok := r.plans.Get(key); ok {
			r.hits.Add(1)
			rt, err := r.route(p, &Args{Params: sc.params}, s)
			return p, rt, err
		}
		if _, raw := r.rawOnly.Get(key); !raw {
			r.misses.Add(1)
			k := string(sc.buf)
			if p, parsed, dml := r.buildPlan(k); parsed && dml {
				r.plans.Add(k, p)
				rt, err := r.route(p, &Args{Params: sc.params}, s)
				return p, rt, err
			}
			r.rawOnly.Add(k, struct{}{})
		}
	}
	p, _ := r.Prepare(sql)
	rt, err := r.route(p, &Args{}, s)
	return p, rt, err
}

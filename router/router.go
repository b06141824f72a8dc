package router

import "github.com/pgrouter/pgrouter/config"

// Router plans statements for one logical database. It is safe for
// concurrent use; the plan cache is shared by all sessions of the database.
type Router struct{}

// Scratch is per-session reusable memory for RouteSimple (zero value ready).
type Scratch struct{}

type analysis struct{}

// New builds a router for db over the ordered shard names.
func New(db *config.Database, shards []string) (*Router, error) { panic("todo") }

// Prepare plans a statement text (extended protocol: once at Parse).
func (r *Router) Prepare(sql string) (*Plan, error) { panic("todo") }

// Route decides where one execution of a prepared plan goes.
func (r *Router) Route(p *Plan, args Args, s Session) (Route, error) { panic("todo") }

// RouteSimple plans (via the cache, with inline literals normalised) and
// routes a simple-protocol query string, which may hold several statements.
func (r *Router) RouteSimple(sql string, s Session, sc *Scratch) (*Plan, Route, error) {
	panic("todo")
}

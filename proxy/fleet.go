package proxy

import (
	"context"

	"github.com/pgrouter/pgrouter/proxy/twophase"
)

// Option adjusts Start.
type Option func(*options)

type options struct {
	fleet    bool
	twoPhase func(instance string) (twophase.Shared, error)
}

// InFleet starts the instance as a member of a fleet (package fleet): with
// cluster.pool_budget set, its pools open nothing until the fleet grants
// this member its share; two-phase commit decisions go to shared.
func InFleet(shared func(instance string) (twophase.Shared, error)) Option {
	return func(o *options) { o.fleet, o.twoPhase = true, shared }
}

// Fleet is the fleet this instance belongs to, as the admin console sees
// it (package fleet implements it).
type Fleet interface {
	Version() int64
	URL() string
	Table(ctx context.Context) (cols []string, rows [][]string, err error)
	// Run runs PAUSE, RESUME or RELOAD on every live member (a barrier).
	Run(ctx context.Context, op, arg string) error
	// ReloadLocal applies the newest published version to this instance.
	ReloadLocal(ctx context.Context) error
}

type fleetRef struct{ f Fleet }

// SetFleet attaches the fleet (after Join); the console then lists it and
// runs fleet-wide operations.
func (s *Server) SetFleet(f Fleet) { s.fleet.Store(&fleetRef{f}) }

func (s *Server) fleetOf() Fleet {
	if r := s.fleet.Load(); r != nil {
		return r.f
	}
	return nil
}

// Pause holds new transactions of db ("" = all) until Resume; it waits for
// running ones at most pool.shutdown_timeout and returns how many still
// held a backend then.
func (s *Server) Pause(db string) int {
	return s.pause.pause(db, s, adminTimeoutOf(s))
}

// Resume lifts Pause.
func (s *Server) Resume(db string) { s.pause.resume(db) }

package proxy

import (
	"context"
	"time"

	"github.com/pgrouter/pgrouter/proxy/twophase"
	"github.com/pgrouter/pgrouter/router/sharding"
)

// Option adjusts Start.
type Option func(*options)

type options struct {
	fleet    bool
	twoPhase func(instance string) (twophase.Shared, error)
	deferred bool // accept clients only from Instance.Serve
}

// DeferServe starts the instance without accepting clients until
// Instance.Serve: a fleet member first joins and takes the fleet's reshard
// marks and holds, so its first client already routes under them
// (connections wait in the listen backlog meanwhile).
func DeferServe() Option {
	return func(o *options) { o.deferred = true }
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
	// ReshardPhase records reshard id (its next config, moves and phase:
	// copy, cleanup, done, aborted) in etcd, where every member takes its
	// marks from; with confirm it waits until every live member applied
	// them (a barrier), else fails naming who did not.
	ReshardPhase(ctx context.Context, id string, next []byte, moves []sharding.Move, phase string, confirm bool) error
	// ReshardCutover is reshard id's cutover on every live member: hold
	// and drain everywhere, drained, publish the next config as a version
	// (a directory reshard: record that drained pointed the lookup table),
	// switch everywhere. switched: that switch is published (the placement
	// is in force even when err names a member that did not acknowledge
	// the switch). If nothing was published after drained ran, undo runs
	// before any member is released.
	ReshardCutover(ctx context.Context, id string, drained, undo func(context.Context) error) (held time.Duration, switched bool, err error)
	// ReshardStatus describes the newest reshard recorded in the fleet for
	// a member that does not run it (SHOW RESHARD); ok false when none.
	ReshardStatus(ctx context.Context) (id, phase, by string, ok bool, err error)
	// RunningYAML is the text of the config version this member runs.
	RunningYAML() []byte
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

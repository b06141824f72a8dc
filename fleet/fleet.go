package fleet

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pgrouter/pgrouter/config"
	"github.com/pgrouter/pgrouter/router/sharding"
)

// Local is the running pgrouter as the fleet drives it.
type Local interface {
	// ApplyConfig swaps the running config for cfg as a whole, or keeps
	// the old one and returns why (the reload path of SIGHUP and RELOAD).
	ApplyConfig(cfg *config.Config, force bool) error
	// Pause holds new transactions of db ("" = all) once running ones ended.
	Pause(ctx context.Context, db string) error
	Resume(db string) error
	// SetPoolCap caps every backend pool at n (n < 0: no cap).
	SetPoolCap(n int)
	// Fence ends every session that holds a backend (its client is told
	// reason) and refuses new backends until Unfence; called again, it
	// sweeps once more. The pools' cap is set apart (SetPoolCap).
	Fence(reason string)
	Unfence()
	// MaxPoolTotal is the largest number of backends any one pool holds.
	MaxPoolTotal() int

	// A reshard's cutover on this member (reshard.go): HoldMoves holds
	// the writes of the keys that move between the running config and
	// next and drains the transactions on their sources (bounded by ctx);
	// the hold stays up until SwitchMoves (next, the reshard's version, in
	// force) or ReleaseMoves, and after refuseAfter without either the
	// held statements are refused instead. HeldReshard names the reshard
	// held ("" = none).
	HoldMoves(ctx context.Context, id string, next *config.Config, refuseAfter time.Duration) error
	SwitchMoves(id string, next *config.Config) error
	// HoldKeys and SwitchKeys are the same for a directory reshard, whose
	// moves (sharding.DirectoryMove) name the keys: the config stays, and
	// the switch drops the tables' cached directory mappings (the lookup
	// table points the keys at their target) before lowering the hold.
	HoldKeys(ctx context.Context, id string, moves []sharding.Move, refuseAfter time.Duration) error
	SwitchKeys(id string, moves []sharding.Move) error
	ReleaseMoves(id string)
	HeldReshard() string
	// SetReshardMarks sets the marks to exactly these: copies on each
	// move's To shard, leftovers on its From shard.
	SetReshardMarks(copies, leftovers []sharding.Move)
}

// Options adjust what Open and every later version load.
type Options struct {
	// Rewrite adjusts each loaded config to this host (listen addresses,
	// data_dir from command-line flags); nil: none.
	Rewrite func(*config.Config)
	// Log receives the fleet's lines; nil: none.
	Log *slog.Logger
}

// Fleet is this pgrouter's membership in a fleet.
type Fleet struct {
	st      *Store
	opts    Options
	log     *slog.Logger
	local   Local
	id      string
	started time.Time

	cfg      atomic.Pointer[config.Config] // the applied version's config
	doc      atomic.Pointer[Doc]           // the applied version
	applied  atomic.Int64                  // the applied version
	failed   atomic.Int64                  // the newest version this member refused
	health   atomic.Pointer[string]        // "ok" or why the newest version is not applied
	twoPC    atomic.Pointer[string]        // this member's two-phase commit instance id, if any
	kick     chan struct{}                 // something changed: resync now
	handlers sync.Map                      // op name → Handler
	applyMu  sync.Mutex                    // one change at a time of version, reshard holds and marks
	pointed  map[string]bool               // directory reshards switched here (SwitchKeys done; under applyMu)

	renewedAt atomic.Int64         // clock() when the last successful renewal (or grant) was sent (lease.go)
	granted   atomic.Int64         // the TTL etcd granted the member lease
	asked     atomic.Int64         // the lease_ttl it was asked with (a new lease_ttl: a new lease, lease.go)
	gone      map[string]time.Time // members with a budget entry but no record, since when (budget loop only)
	capMu     sync.Mutex           // orders cap changes with the fence
	lastCap   int                  // the pool cap last set (under capMu)
	fenced    atomic.Bool          // the member fenced itself (fence.go); changed under capMu

	mu     sync.Mutex
	lease  int64 // clientv3.LeaseID of the member record; 0 = not registered
	cancel context.CancelFunc
	wg     sync.WaitGroup

	versionGauge, refusedGauge, upGauge, membersGauge, capGauge, fencedGauge prometheus.Gauge
	fencesTotal                                                              prometheus.Counter
}

// Open dials etcd, loads the newest published config version and returns
// it; the caller starts pgrouter on it and then calls Join.
func Open(ctx context.Context, rawURL string, opts Options) (*Fleet, *config.Config, error) {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	st, err := Dial(rawURL, opts.Log)
	if err != nil {
		return nil, nil, err
	}
	f := &Fleet{st: st, opts: opts, log: opts.Log, kick: make(chan struct{}, 1), started: time.Now(), lastCap: -1,
		gone: map[string]time.Time{}, pointed: map[string]bool{}}
	f.initMetrics()
	doc, err := st.Current(ctx)
	if err == nil && doc == nil {
		err = fmt.Errorf("%s holds no config yet: publish one with `pgrouter config push FILE --etcd %s`", rawURL, rawURL)
	}
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	cfg, err := f.load(doc)
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	f.setApplied(doc, cfg, "ok")
	if cfg.Cluster.PoolBudget > 0 {
		f.lastCap = 0 // what the proxy starts a fleet member with (proxy.InFleet)
	}
	f.registerHandlers()
	return f, cfg, nil
}

// load parses a version and adapts it to this host.
func (f *Fleet) load(doc *Doc) (*config.Config, error) {
	cfg, err := f.st.Parse(doc)
	if err != nil {
		return nil, err
	}
	if f.opts.Rewrite != nil {
		f.opts.Rewrite(cfg)
	}
	return cfg, nil
}

func (f *Fleet) setApplied(doc *Doc, cfg *config.Config, health string) {
	f.cfg.Store(cfg)
	f.doc.Store(doc)
	f.applied.Store(doc.Version)
	f.health.Store(&health)
	f.versionGauge.Set(float64(doc.Version))
}

// Store is the fleet's etcd handle.
func (f *Fleet) Store() *Store { return f.st }

// ID names this member (its client address).
func (f *Fleet) ID() string { return f.id }

// Version is the config version this member runs.
func (f *Fleet) Version() int64 { return f.applied.Load() }

// URL is the etcd URL the fleet lives under.
func (f *Fleet) URL() string { return f.st.URL() }

// Join registers this member (id: its client address) and starts the
// loops that apply new versions, run fleet operations, share the
// connection budget and watch etcd's health. It returns once the member
// record exists, or the error that prevented it.
func (f *Fleet) Join(ctx context.Context, local Local, addr string) error {
	f.local, f.id = local, memberID(addr)
	if err := f.register(ctx); err != nil {
		return err
	}
	rev, err := f.currentRevision(ctx)
	if err != nil {
		return err
	}
	// Registered first, then the reshards read: a cutover's hold either
	// names this member or is in the record read here.
	if err := f.sync(ctx, false); err != nil {
		return err
	}
	lctx, cancel := context.WithCancel(context.Background())
	f.mu.Lock()
	f.cancel = cancel
	f.mu.Unlock()
	loops := []func(context.Context){f.watchConfig, f.keepRegistered, f.budgetLoop, f.healthLoop, f.fenceLoop,
		func(ctx context.Context) { f.watchOps(ctx, rev) }}
	for _, loop := range loops {
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			loop(lctx)
		}()
	}
	f.log.Info("joined the fleet", "member", f.id, "etcd", f.st.URL(), "config_version", f.Version())
	return nil
}

// Close leaves the fleet (after the instance closed its pools): its budget
// entry and its record go at once (lease revoked), so the others rebalance
// the budget without waiting for the lease to end or the fence grace.
func (f *Fleet) Close() {
	f.mu.Lock()
	cancel, lease := f.cancel, f.lease
	f.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	f.wg.Wait()
	if lease != 0 {
		f.leaveBudget()
		ctx, cancel := f.st.ctx(context.Background())
		if _, err := f.st.cli.Revoke(ctx, leaseID(lease)); err != nil {
			f.log.Warn("leaving the fleet: lease not revoked; the others rebalance once it expires (cluster.lease_ttl)",
				"member", f.id, "err", err.Error())
		}
		cancel()
	}
	f.st.Close()
}

// Kick asks every loop to resync now (after an etcd outage, a new version…).
func (f *Fleet) Kick() {
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// leaseTTL is the member lease's TTL from the applied config.
func (f *Fleet) leaseTTL() time.Duration { return f.cfg.Load().Cluster.LeaseTTL.D() }

// SetLogger replaces the logger (before Join: Open runs before the
// config, and so the log format, is known).
func (f *Fleet) SetLogger(log *slog.Logger) { f.log, f.st.log = log, log }

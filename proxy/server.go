package proxy

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pgrouter/pgrouter/config"
	"github.com/pgrouter/pgrouter/directory"
	"github.com/pgrouter/pgrouter/reshard"
	"github.com/pgrouter/pgrouter/router"
	"github.com/pgrouter/pgrouter/topology"
)

// Server accepts client connections and runs one session per client.
type Server struct {
	log   *slog.Logger
	topo  *topology.Topology
	state atomic.Pointer[serverState]
	stmts stmtRegistry

	mu       sync.Mutex
	sessions map[uint32]*session // by synthetic backend PID, for cancel and admin
	nextPID  uint32
	clients  atomic.Int64
	limits   *limits // per-user/database clients, query rates (limits.go)

	listener net.Listener
	closing  atomic.Bool
	wg       sync.WaitGroup

	defaultParams   atomic.Pointer[cachedParams] // ParameterStatus set of a login without startup GUCs
	pause           pauser
	version         atomic.Pointer[string]
	finishedQueries atomic.Uint64 // queries of sessions that have ended
	Metrics         *Metrics
	dirs            dirRegistry  // directories of this and older configs still in use (INVALIDATE DIRECTORY)
	coord           *coordinator // two-phase commit; nil when no database enables it
	guard           guard        // failed-login throttling, accept errors, limit counters
	mockSecret      [32]byte     // derives unknown users' mock SCRAM salts (stable for the process)
	hold            router.Hold  // cutover gate and marks, shared by every router (cutover.go)
	cutoverM        *cutoverMetrics
	reshard         *reshard.Engine                  // the resharding engine (admin_reshard.go)
	cutFloors       atomic.Pointer[[]topology.Floor] // per shard: replicas must have replayed a cutover's copies (cutover.go)
	memberHold      memberHold                       // a fleet's cutover hold on this member (fleet_reshard.go)
	reshardOn       atomic.Pointer[reshardRef]       // the reshard the engine runs (admin_reshard.go)
	// fleet is the fleet this instance belongs to (fleet.go); nil when alone.
	fleet atomic.Pointer[fleetRef]
	fence fenceState // a fleet member cut off from etcd (fence.go)
}

// cachedParams is a recent ParameterStatus set of the servers' defaults.
type cachedParams struct {
	params map[string]string
	at     time.Time
}

// serverState is everything derived from one config; swapped on reload.
type serverState struct {
	cfg     *config.Config
	users   map[string]*userAuth
	routers map[string]*router.Router       // by client-visible database name
	dirs    map[string]*directory.Directory // directory-sharded tables' lookups, by database name
	tls     *tls.Config
	// mockMethod is how unknown users are challenged (see mockMethod).
	mockMethod string
}

// New builds a server for cfg over topo.
func New(cfg *config.Config, topo *topology.Topology, log *slog.Logger) (*Server, error) {
	s := &Server{log: log, topo: topo, sessions: map[uint32]*session{}, Metrics: NewMetrics()}
	s.limits = newLimits(s.Metrics.Registry)
	s.stmts.init()
	s.fence.init()
	rand.Read(s.mockSecret[:])
	s.guard.init(s.Metrics.Registry)
	s.cutoverM = newCutoverMetrics(s.Metrics.Registry)
	s.reshard = reshard.New(reshardHost{s}, log, s.Metrics.Registry)
	st, err := buildState(cfg, log, &s.hold)
	if err != nil {
		return nil, err
	}
	s.state.Store(st)
	s.dirs.add(st.dirs)
	return s, nil
}

func buildState(cfg *config.Config, log *slog.Logger, hold *router.Hold) (*serverState, error) {
	st := &serverState{cfg: cfg, users: map[string]*userAuth{}, routers: map[string]*router.Router{},
		dirs: map[string]*directory.Directory{}}
	for i := range cfg.Users {
		ua, err := newUserAuth(&cfg.Users[i])
		if err != nil {
			return nil, err
		}
		st.users[cfg.Users[i].Name] = ua
	}
	st.mockMethod = mockMethod(st.users)
	for i := range cfg.Databases {
		db := &cfg.Databases[i]
		dir, err := directory.New(cfg, db, log)
		if err != nil {
			return nil, fmt.Errorf("database %s: %w", db.Name, err)
		}
		r, err := router.ForConfig(cfg, db, router.WithDirectory(dir), router.WithHold(hold))
		if err != nil {
			return nil, fmt.Errorf("database %s: %w", db.Name, err)
		}
		st.routers[db.Name] = r
		st.dirs[db.Name] = dir
	}
	if cfg.TLS.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLS.CertFile, cfg.TLS.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		st.tls = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	return st, nil
}

// ReloadFile validates path and, when valid, swaps topology and proxy state
// to it; on any error the running config stays. Sessions pick the new state
// up at login; running transactions finish where they started.
func (s *Server) ReloadFile(path string, force bool) error {
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	return s.ReloadConfig(cfg, force)
}

// ReloadConfig swaps topology and proxy state to cfg (already validated:
// a file, or a fleet version from etcd), or keeps the running config and
// returns why.
func (s *Server) ReloadConfig(cfg *config.Config, force bool) error {
	st, err := buildState(cfg, s.log, &s.hold)
	if err != nil {
		return err
	}
	return s.swapState(cfg, st, force)
}

// Reload is ReloadFile plus the log line every reload path shares (SIGHUP,
// the admin RELOAD, the config watcher, the API): "config reloaded" at info,
// or "config reload refused" at warn with every error and its file:line.
// source says which path asked; attrs are added to the line (e.g. client_id).
func (s *Server) Reload(path string, force bool, source string, attrs ...any) error {
	err := s.ReloadFile(path, force)
	args := append([]any{"file", path, "source", source, "force", force}, attrs...)
	if err != nil {
		s.log.Warn("config reload refused; the running config stays", append(args, "err", err.Error())...)
		return err
	}
	s.log.Info("config reloaded", args...)
	return nil
}

// Config returns the config in force.
func (s *Server) Config() *config.Config { return s.state.Load().cfg }

// Topology returns the live topology.
func (s *Server) Topology() *topology.Topology { return s.topo }

// Serve accepts clients on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	// Under mu, so a Shutdown that runs before Serve got here (SHUTDOWN or a
	// signal right after start) still closes the listener; see Shutdown.
	s.mu.Lock()
	s.listener = ln
	closing := s.closing.Load()
	s.mu.Unlock()
	if closing {
		ln.Close()
		return nil
	}
	var backoff time.Duration // > 0 while accept errors last
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.closing.Load() {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// Out of file descriptors (EMFILE/ENFILE) or another transient
			// error: wait for connections to close, never exit.
			backoff = s.guard.acceptFailed(s.log, err, backoff)
			time.Sleep(backoff)
			continue
		}
		if backoff > 0 {
			s.guard.acceptRecovered(s.log)
			backoff = 0
		}
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetNoDelay(true)
			tc.SetKeepAlive(true)
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.handle(c)
		}()
	}
}

// Shutdown stops accepting, lets running transactions finish until ctx ends,
// then closes every client connection.
func (s *Server) Shutdown(ctx context.Context) {
	s.mu.Lock()
	s.closing.Store(true)
	if s.listener != nil {
		s.listener.Close()
	}
	for _, ss := range s.sessions {
		ss.shutdownRequested()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		s.mu.Lock()
		for _, ss := range s.sessions {
			ss.conn.Close()
			ss.interruptBackends() // a session waiting on its backend would never see the closed client
		}
		s.mu.Unlock()
		<-done
	}
	retireDirectories(s.state.Load().dirs) // their idle lookup connections
}

func (s *Server) register(ss *session) {
	s.mu.Lock()
	for {
		s.nextPID++
		if s.nextPID == 0 {
			continue
		}
		if _, taken := s.sessions[s.nextPID]; !taken {
			break
		}
	}
	ss.pid = s.nextPID
	ss.hints.ID = ss.pid // lets a cutover gate recognise the session (cutover.go)
	s.sessions[ss.pid] = ss
	s.mu.Unlock()
}

func (s *Server) unregister(ss *session) {
	s.mu.Lock()
	delete(s.sessions, ss.pid)
	s.mu.Unlock()
	ss.txGen.Add(1) // a cutover waiting for its transaction stops waiting
	s.finishedQueries.Add(ss.queries.Load())
}

// queriesTotal counts client requests since start (SHOW STATS).
func (s *Server) queriesTotal() uint64 {
	n := s.finishedQueries.Load()
	for _, ss := range s.Sessions() {
		n += ss.queries.Load()
	}
	return n
}

// SetVersion sets what SHOW VERSION reports.
func (s *Server) SetVersion(v string) { s.version.Store(&v) }

// Version is what SHOW VERSION reports.
func (s *Server) Version() string {
	if v := s.version.Load(); v != nil {
		return *v
	}
	return "pgrouter (unknown version)"
}

// cancel forwards a client's CancelRequest to the backend running its query.
func (s *Server) cancel(pid uint32, secret []byte) {
	s.mu.Lock()
	ss := s.sessions[pid]
	s.mu.Unlock()
	if ss == nil || !ss.secretMatches(secret) {
		return
	}
	ss.cancelRunning()
}

// Sessions returns a snapshot of the connected sessions (admin console).
func (s *Server) Sessions() []*session {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*session, 0, len(s.sessions))
	for _, ss := range s.sessions {
		out = append(out, ss)
	}
	return out
}

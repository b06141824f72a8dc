package proxy

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/pgrouter/pgrouter/pgwire"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pgrouter/pgrouter/proxy/twophase"
)

// coordinator runs two-phase commits over the backends of a transaction
// that wrote on several shards, and finishes the ones a crash or a lost
// shard left in doubt (twopc_recover.go). See package twophase for the log.
type coordinator struct {
	srv *Server
	log *twophase.Log

	mu       sync.Mutex
	inflight map[string]bool // prepared by a live session: recovery leaves them alone

	// shared holds decisions where the fleet's other members read them
	// (twopc_fleet.go); nil for a pgrouter alone.
	shared twophase.Shared

	commits, aborts prometheus.Counter
	// pauseAt is a test hook (PGROUTER_TEST_2PC_PAUSE=after_prepare|after_decision,
	// optionally ":DURATION"): a commit stops there for good (or for DURATION), so
	// a test can kill pgrouter, or a shard's connection, between the phases.
	pauseAt string
}

func newCoordinator(srv *Server, dir string) (*coordinator, error) {
	l, err := twophase.Open(dir)
	if err != nil {
		return nil, err
	}
	c := &coordinator{srv: srv, log: l, inflight: map[string]bool{}, pauseAt: os.Getenv("PGROUTER_TEST_2PC_PAUSE"),
		commits: prometheus.NewCounter(prometheus.CounterOpts{Name: "pgrouter_2pc_commits_total",
			Help: "Multi-shard transactions committed with two-phase commit."}),
		aborts: prometheus.NewCounter(prometheus.CounterOpts{Name: "pgrouter_2pc_aborts_total",
			Help: "Multi-shard transactions rolled back because a participant could not prepare."}),
	}
	srv.Metrics.Registry.MustRegister(c.commits, c.aborts,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "pgrouter_2pc_in_doubt",
			Help: "Decided two-phase commits not yet confirmed on every participant."},
			func() float64 { return float64(len(c.log.Pending())) }))
	return c, nil
}

// commitOutcome is what the client is told about a multi-shard COMMIT.
type commitOutcome struct {
	tag     string          // "COMMIT" or "ROLLBACK"
	err     *pgconn.PgError // the transaction was rolled back because of this
	warning *pgconn.PgError // committed, but a participant confirms later
}

// commit runs the two-phase commit of members (every backend of the
// transaction, each in state 'T'). Afterwards no member is inside a
// transaction: each is 'I' (reusable) or marked broken ('E').
func (c *coordinator) commit(ss *session, members []*binding) commitOutcome {
	gid := c.log.NewGID()
	c.mu.Lock()
	c.inflight[gid] = true
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.inflight, gid)
		c.mu.Unlock()
	}()

	prepared, failure := c.prepareAll(members, gid)
	if failure != nil {
		c.rollbackPrepared(members, prepared, gid)
		c.aborts.Inc()
		return commitOutcome{tag: "ROLLBACK", err: failure}
	}
	c.pause("after_prepare")
	d := twophase.Decision{GID: gid, Database: ss.dbName, User: ss.user.Name, Shards: ss.shardNames(members)}
	if out, decided := c.decideShared(d, members, prepared); decided {
		return out
	}
	if err := c.log.Commit(d); err != nil {
		c.rollbackPrepared(members, prepared, gid)
		c.aborts.Inc()
		c.srv.log.Error("two-phase commit log write failed; transaction rolled back", "gid", gid, "err", err)
		return commitOutcome{tag: "ROLLBACK", err: pgwire.Error(pgwire.IOError, "could not record the two-phase commit decision: "+err.Error(),
			"the transaction was rolled back on every shard; check pgrouter's data_dir")}
	}
	c.pause("after_decision")
	c.commits.Inc()
	if lagging := c.commitPrepared(members, gid); len(lagging) > 0 {
		c.srv.log.Warn("two-phase commit decided; some shards confirm later", "gid", gid, "shard", strings.Join(lagging, ","))
		return commitOutcome{tag: "COMMIT", warning: &pgconn.PgError{Severity: "WARNING", Code: pgwire.Warning,
			Message: fmt.Sprintf("transaction committed; shard(s) %s will apply the commit when reachable", strings.Join(lagging, ", ")),
			Detail:  "two-phase commit " + gid}}
	}
	c.log.Done(gid)
	c.forget(gid)
	return commitOutcome{tag: "COMMIT"}
}

// pause blocks forever at the configured test point.
func (c *coordinator) pause(point string) {
	at, d, timed := strings.Cut(c.pauseAt, ":")
	if at != point {
		return
	}
	c.srv.log.Warn("two-phase commit paused by PGROUTER_TEST_2PC_PAUSE", "point", point, "for", d)
	if dur, err := time.ParseDuration(d); timed && err == nil {
		time.Sleep(dur)
		return
	}
	select {}
}

// prepareAll sends PREPARE TRANSACTION to every member at once and reads
// the answers. prepared[i] tells whether member i holds a prepared
// transaction now; failure is the first reason one could not prepare.
func (c *coordinator) prepareAll(members []*binding, gid string) (prepared []bool, failure *pgconn.PgError) {
	prepared = make([]bool, len(members))
	results := execAll(members, "PREPARE TRANSACTION "+quoteLiteral(gid))
	for i, r := range results {
		prepared[i] = r.err == nil && r.tag == "PREPARE TRANSACTION"
		if !prepared[i] && failure == nil {
			failure = r.failure(c.srv.shardName(members[i]), "could not prepare")
		}
	}
	if failure != nil {
		failure = pgwire.WithMessage(failure, "multi-shard transaction rolled back on every shard: "+failure.Message)
	}
	return prepared, failure
}

// rollbackPrepared ends an aborted two-phase commit: prepared members roll
// their prepared transaction back; the others end whatever is left.
func (c *coordinator) rollbackPrepared(members []*binding, prepared []bool, gid string) {
	for i, b := range members {
		sql := "ROLLBACK"
		if prepared[i] {
			sql = "ROLLBACK PREPARED " + quoteLiteral(gid)
		}
		if r := execOne(b, sql); r.err != nil && prepared[i] {
			// Left prepared: recovery rolls it back (no commit record exists).
			c.srv.log.Warn("rollback of a prepared transaction failed; recovery will retry", "gid", gid, "node", b.node.Name, "err", r.err.Message)
		}
	}
}

// commitPrepared sends COMMIT PREPARED everywhere; it returns the shards
// that did not confirm (recovery retries them).
func (c *coordinator) commitPrepared(members []*binding, gid string) (lagging []string) {
	for i, r := range execAll(members, "COMMIT PREPARED "+quoteLiteral(gid)) {
		if r.err != nil {
			lagging = append(lagging, c.srv.shardName(members[i]))
		}
	}
	return lagging
}

// shardName names a binding's shard in the current config.
func (s *Server) shardName(b *binding) string {
	return s.state.Load().cfg.Shards[b.shard].Name
}

func (ss *session) shardNames(bs []*binding) []string {
	names := make([]string, len(bs))
	for i, b := range bs {
		names[i] = ss.st.cfg.Shards[b.shard].Name
	}
	return names
}

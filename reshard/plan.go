package reshard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgrouter/pgrouter/config"
	"github.com/pgrouter/pgrouter/pool"
	"github.com/pgrouter/pgrouter/router/sharding"
)

// Host is what the engine needs of the serving pgrouter (proxy.Server):
// the running config, the cutover, and the marks that keep multi-shard
// statements away from shards holding rows that are not theirs. On a
// fleet member the host makes every member act as one: marks and cutover
// go through the fleet's barrier, and the next placement is published as
// a config version (Begin reports it).
type Host interface {
	Config() *config.Config
	// ConfigText is the running config's text: its file, or the config
	// version a fleet member runs.
	ConfigText() ([]byte, error)
	// Begin names the reshard the calls that follow belong to (its id and
	// the next config's text); the engine calls it before any of them. It
	// reports whether the host puts the next config in force itself, during
	// Cutover (a fleet member publishes it as a config version), instead of
	// the engine replacing the config file.
	Begin(id string, next []byte) (publishes bool)
	// Cutover holds the moving keys' writes, drains, calls drained, and
	// switches to next. An error wrapping ErrSwitched means the next
	// placement is in force although the switch did not complete
	// everywhere (a fleet member that did not acknowledge it). A fleet
	// member's host calls undo (when drained was called) if the switch
	// did not happen, before any member lowers its hold: drained may have
	// pointed a lookup table at the target, which must point back first.
	Cutover(ctx context.Context, next *config.Config, moves []sharding.Move, drained, undo func(context.Context) error) (time.Duration, error)
	// The marks: an error means they may not be in place everywhere.
	MarkCopies(moves []sharding.Move) error
	Unmark(moves []sharding.Move) error
	MarkCleanup(moves []sharding.Move) error
	CleanupDone(moves []sharding.Move) error
	// ShardOfKey is the shard table's key (canonical text) is on now.
	ShardOfKey(db, table, key string) (string, error)
}

// ErrSwitched is wrapped by a Cutover error after which the next placement
// is nevertheless in force: the reshard goes on with the clean-up (which
// waits until every member runs the next placement), never back to the
// catch-up.
var ErrSwitched = errors.New("the next placement is in force")

// plan is one reshard worked out from the running and the next config.
type plan struct {
	cur, next *config.Config
	moves     []sharding.Move
	sources   []source
}

// source is one (database, From shard): one publication and one logical
// replication slot feed every move out of it.
type source struct {
	db, shard string
	moves     []int  // indexes into plan.moves
	slot      string // the slot's and the publication's name
}

func newPlan(cur, next *config.Config, id string) (*plan, error) {
	moves, err := sharding.PlanMoves(cur, next)
	if err != nil {
		return nil, err
	}
	if len(moves) == 0 {
		return nil, errors.New("the next config moves no rows: nothing to reshard")
	}
	return planMoves(cur, next, id, moves), nil
}

// planMoves groups moves by source.
func planMoves(cur, next *config.Config, id string, moves []sharding.Move) *plan {
	p := &plan{cur: cur, next: next, moves: moves}
	for i, m := range moves {
		j := p.sourceOf(m.Database, m.From)
		if j < 0 {
			p.sources = append(p.sources, source{db: m.Database, shard: m.From,
				slot: fmt.Sprintf("pgrouter_reshard_%s_%d", id, len(p.sources))})
			j = len(p.sources) - 1
		}
		p.sources[j].moves = append(p.sources[j].moves, i)
	}
	return p
}

func (p *plan) sourceOf(db, shard string) int {
	for i, s := range p.sources {
		if s.db == db && s.shard == shard {
			return i
		}
	}
	return -1
}

// dial connects to shard's primary in database db (config name) with the
// first user's server credentials; replication opens a logical
// replication connection.
func dial(ctx context.Context, cfg *config.Config, shard, db string, replication bool) (*pgconn.PgConn, error) {
	i := cfg.ShardIndex(shard)
	d := cfg.Database(db)
	if i < 0 || d == nil || len(cfg.Users) == 0 {
		return nil, fmt.Errorf("no shard %q, database %q or user in the config", shard, db)
	}
	c, err := dialNode(ctx, cfg.BackendTLSFor(shard), cfg.Shards[i].Primary.Addr, d.Dbname, &cfg.Users[0], replication)
	if err != nil {
		return nil, fmt.Errorf("shard %s: %w", shard, err)
	}
	return c, nil
}

// dialNode connects to the server at addr as u's server role.
func dialNode(ctx context.Context, tls config.BackendTLS, addr, dbname string, u *config.User, replication bool) (*pgconn.PgConn, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("address %q: %w", addr, err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("address %q: %w", addr, err)
	}
	cc, err := pool.ParseTLSConfig(host, tls.SSLMode, tls.CAFile)
	if err != nil {
		return nil, err
	}
	cc.Host, cc.Port, cc.User, cc.Password, cc.Database = host, uint16(port), u.BackendUser(), u.BackendPassword(), dbname
	// One text form for every connection of the engine: pgoutput's row text
	// (written by the walsender's session) is read back by the targets', and
	// verify compares row text across servers.
	cc.RuntimeParams = map[string]string{"application_name": "pgrouter-reshard",
		"DateStyle": "ISO, MDY", "TimeZone": "UTC", "IntervalStyle": "postgres", "extra_float_digits": "3"}
	if replication {
		cc.RuntimeParams["replication"] = "database"
	}
	cc.ConnectTimeout = 10 * time.Second
	return pgconn.ConnectConfig(ctx, cc)
}

package router

import (
	"fmt"
	"strings"
	"sync/atomic"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/pgrouter/pgrouter/config"
	"github.com/pgrouter/pgrouter/router/sharding"
)

// DefaultCacheSize is the number of plans a Router keeps.
const DefaultCacheSize = 10000

// Router plans statements for one logical database. It is safe for
// concurrent use; the plan cache is shared by all sessions of the database.
type Router struct {
	dbName     string
	shardNames []string
	shardIdx   map[string]int
	all        ShardSet
	tables     []*shardedTable
	refs       []tableName
	unlisted   relKindT
	unlistedTo int
	refWrites  bool // reference_writes: best_effort, or two-phase commit makes them atomic
	writeFuncs writeFuncSet
	trivial    bool // one shard, no sharded tables: shard choice needs no parse
	shardHints bool // clients may choose shards (hints shard=/key=, SET pgrouter.shard)
	dir        sharding.Directory
	hashSlots  [][]config.HashSlot    // shards[].hash; nil = the default placement
	hold       *Hold                  // the proxy's cutover gate and marks (hold.go); nil = none
	next       atomic.Pointer[Router] // successor (Follow)
	placeKey   string                 // equal for routers that place every key alike

	plans   *lru.Cache[string, *Plan]
	cols    columnOrders                 // sharded tables' column orders read from the catalog (columns.go)
	rawOnly *lru.Cache[string, struct{}] // normalised texts that must be planned raw
	hits    atomic.Uint64
	misses  atomic.Uint64
}

type tableName struct{ schema, name string }

type relKindT uint8

const (
	relCatalog relKindT = iota
	relReference
	relUnlistedShard
	relUnlistedError
)

// Option configures a Router at construction.
type Option func(*Router)

// WithDirectory injects the lookup that resolves the keys of
// directory-sharded tables (function: directory). Without it those keys
// fail with 0A000. The router stays pure: plans are cached as usual and
// only the key → shard step of a directory table calls d.
func WithDirectory(d sharding.Directory) Option { return func(r *Router) { r.dir = d } }

// WithShardHints(false) refuses every shard choice made by a client — the
// shard= and key= hints and SET pgrouter.shard (routing.allow_shard_hints).
// Role hints stay. The default allows them.
func WithShardHints(allow bool) Option { return func(r *Router) { r.shardHints = allow } }

// WithHashSlots places the keys of hash-sharded tables by the shards'
// hash slots (config.Config.HashSlots; shards[].hash) instead of the default
// "shard i holds remainder i of modulus len(shards)".
func WithHashSlots(slots [][]config.HashSlot) Option {
	return func(r *Router) { r.hashSlots = slots }
}

// ForConfig builds the router of database db of cfg: its shard names, hash
// slots and routing.allow_shard_hints, plus opts.
func ForConfig(cfg *config.Config, db *config.Database, opts ...Option) (*Router, error) {
	base := []Option{WithShardHints(cfg.Routing.ShardHints()), WithHashSlots(sharding.HashSlotsOf(cfg))}
	return New(db, cfg.ShardNames(), append(base, opts...)...)
}

// New builds a router for db over the ordered shard names.
func New(db *config.Database, shards []string, opts ...Option) (*Router, error) {
	return NewSize(db, shards, DefaultCacheSize, opts...)
}

// NewSize is New with a plan-cache size.
func NewSize(db *config.Database, shards []string, cacheSize int, opts ...Option) (*Router, error) {
	if len(shards) == 0 || len(shards) > MaxShards {
		return nil, fmt.Errorf("router: database %q: need 1..%d shards, got %d", db.Name, MaxShards, len(shards))
	}
	r := &Router{
		dbName: db.Name, shardNames: append([]string(nil), shards...), shardIdx: map[string]int{},
		all: AllShards(len(shards)), refWrites: strings.EqualFold(db.ReferenceWrites, "best_effort") || db.TwoPhaseCommit,
		writeFuncs: newWriteFuncSet(db.WriteFunctions), shardHints: true,
	}
	for _, o := range opts {
		o(r)
	}
	for i, s := range shards {
		r.shardIdx[s] = i
	}
	if err := r.loadTables(db); err != nil {
		return nil, err
	}
	if err := r.loadUnlisted(db.UnlistedTables); err != nil {
		return nil, err
	}
	r.trivial = len(shards) == 1 && len(r.tables) == 0
	r.placeKey = placementKey(db, shards, r.hashSlots)
	var err error
	if r.plans, err = lru.New[string, *Plan](cacheSize); err != nil {
		return nil, fmt.Errorf("router: %w", err)
	}
	if r.rawOnly, err = lru.New[string, struct{}](cacheSize); err != nil {
		return nil, fmt.Errorf("router: %w", err)
	}
	return r, nil
}

func (r *Router) loadTables(db *config.Database) error {
	colocs := map[string]int{}
	for i := range db.ShardedTables {
		ct := &db.ShardedTables[i]
		typ, err := sharding.ParseType(ct.Type)
		if err != nil {
			return fmt.Errorf("router: sharded table %q: %w", ct.Table, err)
		}
		fn, err := sharding.NewPlaced(ct, r.shardNames, r.hashSlots, r.dir)
		if err != nil {
			return fmt.Errorf("router: sharded table %q: %w", ct.Table, err)
		}
		schema, name := splitTableName(ct.Table)
		key := colocKey(ct, typ)
		if _, ok := colocs[key]; !ok {
			colocs[key] = len(colocs)
		}
		var owners ShardSet
		for _, i := range sharding.Owners(ct, r.shardNames, r.hashSlots) {
			owners = owners.Add(i)
		}
		r.tables = append(r.tables, &shardedTable{
			schema: schema, name: name, column: strings.ToLower(ct.Column), typ: typ, fn: fn, owners: owners,
			coloc: colocs[key], display: ct.Table, directory: strings.EqualFold(ct.Function, "directory"),
		})
	}
	for _, t := range db.ReferenceTables {
		schema, name := splitTableName(t)
		r.refs = append(r.refs, tableName{schema, name})
	}
	return nil
}

// colocKey is equal for tables that place equal keys on equal shards.
func colocKey(ct *config.ShardedTable, typ sharding.Type) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s|%s|%s|%s|", strings.ToLower(ct.Function), typ, ct.Default, ct.NullShard)
	if strings.EqualFold(ct.Function, "directory") {
		fmt.Fprintf(&b, "%s", ct.Table) // lookups are per table: never co-located
	}
	for _, rb := range ct.Ranges {
		fmt.Fprintf(&b, "[%s,%s)->%s;", deref(rb.From), deref(rb.To), rb.Shard)
	}
	for _, l := range ct.Lists {
		fmt.Fprintf(&b, "%q->%s;", l.Values, l.Shard)
	}
	return b.String()
}

func deref(s *string) string {
	if s == nil {
		return "∞"
	}
	return *s
}

func (r *Router) loadUnlisted(policy string) error {
	p := strings.TrimSpace(policy)
	switch {
	case p == "" && len(r.shardNames) == 1:
		r.unlisted, r.unlistedTo = relUnlistedShard, 0
	case p == "" || strings.EqualFold(p, "error"):
		r.unlisted = relUnlistedError
	case strings.EqualFold(p, "reference"):
		r.unlisted = relReference
	case strings.HasPrefix(strings.ToLower(p), "shard:"):
		i, ok := r.shardIdx[p[len("shard:"):]]
		if !ok {
			return fmt.Errorf("router: database %q: unlisted_tables %q names an unknown shard", r.dbName, p)
		}
		r.unlisted, r.unlistedTo = relUnlistedShard, i
	default:
		return fmt.Errorf("router: database %q: unlisted_tables must be error, reference or shard:NAME, got %q", r.dbName, p)
	}
	if len(r.shardNames) == 1 && r.unlisted == relUnlistedError {
		r.unlisted, r.unlistedTo = relUnlistedShard, 0 // with one shard everything unlisted lives there
	}
	return nil
}

// splitTableName folds a configured "schema.table" like an unquoted identifier.
func splitTableName(s string) (schema, name string) {
	s = strings.ToLower(strings.TrimSpace(s))
	if i := strings.LastIndexByte(s, '.'); i >= 0 {
		return s[:i], s[i+1:]
	}
	return "", s
}

// ShardNames returns the ordered shard names (index = shard number).
func (r *Router) ShardNames() []string { return append([]string(nil), r.shardNames...) }

// Stats returns the plan-cache counters.
func (r *Router) Stats() CacheStats {
	return CacheStats{Hits: r.hits.Load(), Misses: r.misses.Load(), Size: r.plans.Len()}
}

// placementKey describes where db's keys live: routers with equal keys
// route every key alike (Follow delegates only across a change).
func placementKey(db *config.Database, shards []string, slots [][]config.HashSlot) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%q|%v|", shards, slots)
	for i := range db.ShardedTables {
		ct := &db.ShardedTables[i]
		fmt.Fprintf(&b, "%s|%s|%s|", strings.ToLower(ct.Table), strings.ToLower(ct.Column), ct.Type)
		typ, _ := sharding.ParseType(ct.Type)
		b.WriteString(colocKey(ct, typ))
		b.WriteString(";")
	}
	return b.String()
}

package sharding

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/pgrouter/pgrouter/config"
)

// Move is one set of rows of one sharded table that lives on shard From
// under the old placement and on shard To under the next one.
type Move struct {
	Database, Table, Column string // Table as written in config
	Type                    Type   // key type
	From, To                string // shard names
	// Where is an SQL boolean over Column selecting exactly the moving rows
	// on From, evaluated by Postgres exactly as the router places keys (hash:
	// Postgres's own partition hash; range: bytewise order for text).
	Where string
	// Has is the same predicate in Go: true for the keys that move.
	Has func(Key) bool
	// Keys lists the moving keys (canonical text) of a directory-sharded
	// table's move (DirectoryMove); nil for a placement's move.
	Keys []string
}

// PlanMoves lists every set of rows whose shard differs between old and
// next, one Move per (table, From, To). It fails with a clear error when
// next is not a valid placement (a key without a shard, overlapping hash
// slots) or when a change cannot be done by moving rows (a table's key
// column, type or function changed; a shard that holds rows was removed;
// directory tables move by updating their lookup table, not here).
func PlanMoves(old, next *config.Config) ([]Move, error) {
	var out []Move
	for i := range old.Databases {
		od := &old.Databases[i]
		nd := next.Database(od.Name)
		if nd == nil {
			if len(od.ShardedTables) > 0 {
				return nil, fmt.Errorf("database %q is missing from the next config", od.Name)
			}
			continue
		}
		for j := range od.ShardedTables {
			ot := &od.ShardedTables[j]
			nt := findTable(nd, ot.Table)
			if nt == nil {
				return nil, fmt.Errorf("database %q: sharded table %q is missing from the next config", od.Name, ot.Table)
			}
			ms, err := planTable(old, next, od.Name, ot, nt)
			if err != nil {
				return nil, fmt.Errorf("database %q: table %q: %w", od.Name, ot.Table, err)
			}
			out = append(out, ms...)
		}
	}
	return out, nil
}

func findTable(db *config.Database, name string) *config.ShardedTable {
	for i := range db.ShardedTables {
		if strings.EqualFold(db.ShardedTables[i].Table, name) {
			return &db.ShardedTables[i]
		}
	}
	return nil
}

// placed is one table's sharding function under one config.
type placed struct {
	fn    Func
	names []string
}

func (p placed) shard(k Key) (string, bool) {
	i, err := p.fn.Shard(k)
	if err != nil {
		return "", false
	}
	return p.names[i], true
}

func planTable(old, next *config.Config, db string, ot, nt *config.ShardedTable) ([]Move, error) {
	fnName := strings.ToLower(ot.Function)
	if fnName == "" {
		fnName = "hash"
	}
	if !strings.EqualFold(ot.Column, nt.Column) || !strings.EqualFold(ot.Type, nt.Type) || !strings.EqualFold(ot.Function, nt.Function) {
		return nil, errors.New("the key column, key type or sharding function changed: rows cannot be moved by key")
	}
	typ, err := ParseType(ot.Type)
	if err != nil {
		return nil, err
	}
	if fnName == "directory" {
		if !reflect.DeepEqual(ot, nt) || !slicesEq(old.ShardNames(), next.ShardNames()) {
			return nil, errors.New("directory-sharded tables move keys by updating their lookup table, not by a placement change")
		}
		return nil, nil
	}
	of, err := ForConfig(old, ot)
	if err != nil {
		return nil, fmt.Errorf("old placement: %w", err)
	}
	nf, err := ForConfig(next, nt)
	if err != nil {
		return nil, fmt.Errorf("next placement: %w", err)
	}
	p := movePlan{typ: typ, col: quoteIdent(ot.Column), from: placed{of, old.ShardNames()}, to: placed{nf, next.ShardNames()}}
	switch fnName {
	case "hash":
		err = p.hash(old, next)
	case "range":
		err = p.ranges(ot, nt)
	case "list":
		err = p.lists(ot, nt)
	default:
		return nil, fmt.Errorf("unknown sharding function %q", ot.Function)
	}
	if err == nil {
		err = p.nulls()
	}
	if err != nil {
		return nil, err
	}
	return p.moves(db, ot), nil
}

// movePlan collects, per (From, To), the SQL conditions that select the
// moving keys.
type movePlan struct {
	typ      Type
	col      string
	from, to placed
	pairs    []pair
}

type pair struct {
	from, to string
	conds    []string
}

func (p *movePlan) add(from, to, cond string) {
	if from == to {
		return
	}
	for i := range p.pairs {
		if p.pairs[i].from == from && p.pairs[i].to == to {
			p.pairs[i].conds = append(p.pairs[i].conds, cond)
			return
		}
	}
	p.pairs = append(p.pairs, pair{from: from, to: to, conds: []string{cond}})
}

// nulls moves NULL keys when null_shard changed.
func (p *movePlan) nulls() error {
	o, ook := p.from.shard(Key{Null: true})
	n, nok := p.to.shard(Key{Null: true})
	if ook && !nok {
		return errors.New("the next config sets no null_shard, but rows with a NULL key exist under the old one")
	}
	if ook {
		p.add(o, n, p.col+" IS NULL")
	}
	return nil
}

func (p *movePlan) moves(db string, t *config.ShardedTable) []Move {
	out := make([]Move, 0, len(p.pairs))
	for _, pr := range p.pairs {
		from, to, of, nf := pr.from, pr.to, p.from, p.to
		where := "(" + strings.Join(pr.conds, ") OR (") + ")"
		if len(pr.conds) == 1 {
			where = pr.conds[0]
		}
		out = append(out, Move{
			Database: db, Table: t.Table, Column: t.Column, Type: p.typ, From: from, To: to, Where: where,
			Has: func(k Key) bool {
				o, ok1 := of.shard(k)
				n, ok2 := nf.shard(k)
				return ok1 && ok2 && o == from && n == to
			},
		})
	}
	return out
}

func slicesEq(a, b []string) bool { return reflect.DeepEqual(a, b) }

// quoteIdent quotes a configured column name as Postgres folds an unquoted
// identifier (lower case).
func quoteIdent(s string) string {
	return `"` + strings.ReplaceAll(strings.ToLower(s), `"`, `""`) + `"`
}

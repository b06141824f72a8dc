package reshard

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgrouter/pgrouter/config"
	"github.com/pgrouter/pgrouter/router/sharding"
)

// dirMove is a reshard of a directory-sharded table: keys move to To from
// the shards the lookup table named when it began (kept per From: after
// the switch the lookup names To), and the cutover points them at To in
// the lookup table (directory.move_query).
type dirMove struct {
	Database string              `json:"database"`
	Table    string              `json:"table"`
	To       string              `json:"to"`
	From     map[string][]string `json:"from"` // From shard → keys (canonical text)
}

// directoryTable finds a directory-sharded table of cfg.
func directoryTable(cfg *config.Config, db, table string) (*config.ShardedTable, error) {
	d := cfg.Database(db)
	if d == nil {
		return nil, fmt.Errorf("no database %q in the config", db)
	}
	t := d.Table(table)
	if t == nil || !strings.EqualFold(t.Function, "directory") || t.Directory == nil {
		return nil, fmt.Errorf("table %q of database %q is not directory-sharded", table, db)
	}
	return t, nil
}

// moves is one Move per From shard: exactly the listed keys.
func (d *dirMove) moves(cfg *config.Config) ([]sharding.Move, error) {
	var out []sharding.Move
	for from, keys := range d.From {
		m, err := sharding.DirectoryMove(cfg, d.Database, d.Table, from, d.To, keys)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	if len(out) == 0 {
		return nil, errors.New("every listed key is already on the target shard: nothing to reshard")
	}
	return out, nil
}

// anyKey is one of the moving keys ("" when none).
func (d *dirMove) anyKey() string {
	for _, keys := range d.From {
		if len(keys) > 0 {
			return keys[0]
		}
	}
	return ""
}

// point runs directory.move_query for every key on the directory node, in
// one transaction: to the target, or back to each key's source.
func (d *dirMove) point(ctx context.Context, cfg *config.Config, back bool) error {
	t, err := directoryTable(cfg, d.Database, d.Table)
	if err != nil {
		return err
	}
	u := cfg.DirectoryUser(t.Directory)
	if u == nil {
		return errors.New("no user for the directory node")
	}
	addr := t.Directory.Node
	if a := cfg.NodeAddr(addr); a != "" {
		addr = a
	}
	c, err := dialNode(ctx, cfg.BackendTLSFor(""), addr, t.Directory.Dbname, u, false)
	if err != nil {
		return fmt.Errorf("directory node %s: %w", addr, err)
	}
	defer c.Close(context.WithoutCancel(ctx))
	b := &pgconn.Batch{}
	b.ExecParams("BEGIN", nil, nil, nil, nil)
	for from, keys := range d.From {
		shard := d.To
		if back {
			shard = from
		}
		for _, k := range keys {
			b.ExecParams(t.Directory.MoveQuery, [][]byte{[]byte(k), []byte(shard)}, nil, nil, nil)
		}
	}
	b.ExecParams("COMMIT", nil, nil, nil, nil)
	if _, err := c.ExecBatch(ctx, b).ReadAll(); err != nil {
		return fmt.Errorf("updating the lookup table of %s: %w", d.Table, err)
	}
	return nil
}

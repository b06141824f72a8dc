package directory

import (
	"context"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgrouter/pgrouter/router/sharding"
)

// queryLookup is the real lookupFunc: the lookup query on the directory
// node; for an unknown key with auto_assign, the assign query with the
// hash-chosen shard, then the lookup again, so that concurrent assigners
// (other pgrouter instances too) all end up with the mapping that won.
func (d *Directory) queryLookup(ctx context.Context, t *Table, key string, k sharding.Key) (string, error) {
	c, err := t.pool.get(ctx)
	if err != nil {
		// The client learns the kind of failure; the cause (addresses, user) is logged.
		d.log.Warn("directory connection failed", "table", t.name, "node", t.node, "err", err.Error())
		return "", t.errLookup("lookup", err)
	}
	defer t.pool.put(c)
	name, found, err := t.read(ctx, c, key)
	if err != nil || found {
		return name, err
	}
	if t.assign == nil {
		return "", t.errUnknownKey()
	}
	s, err := t.assign.Shard(k)
	if err != nil {
		return "", err
	}
	if err := c.ExecParams(ctx, t.assignQuery, [][]byte{[]byte(key), []byte(t.shards[s])}, nil, nil, nil).Read().Err; err != nil {
		return "", t.errLookup("auto_assign", err)
	}
	t.assigned.Add(1)
	d.log.Debug("directory mapping assigned", "table", t.name, "shard", t.shards[s])
	name, found, err = t.read(ctx, c, key)
	if err == nil && !found {
		return "", t.errUnknownKey() // the assign query wrote somewhere the lookup does not read
	}
	return name, err
}

// read runs the lookup query for key: found=false when it returns no row.
func (t *Table) read(ctx context.Context, c *pgconn.PgConn, key string) (name string, found bool, err error) {
	res := c.ExecParams(ctx, t.query, [][]byte{[]byte(key)}, nil, nil, nil).Read()
	switch {
	case res.Err != nil:
		return "", false, t.errLookup("lookup", res.Err)
	case len(res.Rows) == 0:
		return "", false, nil
	case len(res.Rows) > 1:
		return "", false, t.errAmbiguous(len(res.Rows))
	case len(res.Rows[0]) == 0 || res.Rows[0][0] == nil:
		return "", false, t.errUnknownShard("NULL")
	}
	return string(res.Rows[0][0]), true, nil
}

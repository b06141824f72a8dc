package sharding

import (
	"context"
	"encoding/hex"
	"strconv"

	"github.com/pgrouter/pgrouter/config"
)

// Directory resolves the keys of directory-sharded tables: the shard of a
// key is whatever a lookup table says. Lookups need I/O, so this package
// only defines the interface; the proxy injects a real one (package
// directory) and tests an in-memory one. table is the table as configured
// (ShardedTable.Table). Errors are *pgconn.PgError, ready for the client.
// Implementations must be safe for concurrent use.
type Directory interface {
	Shard(ctx context.Context, table string, k Key) (int, error)
}

// NewWithDirectory is New with the Directory that resolves keys of a
// directory-sharded table; dir is ignored for the other functions. A nil
// dir gives a Func that fails with 0A000 for every non-NULL key.
func NewWithDirectory(t *config.ShardedTable, shards []string, dir Directory) (Func, error) {
	return NewPlaced(t, shards, nil, dir)
}

// NewPlaced is NewWithDirectory with the shards' hash slots (as
// config.Config.HashSlots gives them; nil = the default, shard i holds
// remainder i of modulus len(shards)).
func NewPlaced(t *config.ShardedTable, shards []string, slots [][]config.HashSlot, dir Directory) (Func, error) {
	fn, err := newFunc(t, shards, slots)
	if err != nil {
		return nil, err
	}
	if d, ok := fn.(directoryFunc); ok {
		d.dir = dir
		return d, nil
	}
	return fn, nil
}

// directoryFunc asks the Directory for every non-NULL key (NULL keys follow
// null_shard like every function). The Func interface carries no context:
// the Directory bounds each lookup with its own timeout.
type directoryFunc struct {
	common
	dir Directory
}

func (d directoryFunc) Shard(k Key) (int, error) {
	if k.Null {
		return d.null()
	}
	if d.dir == nil {
		return 0, errDirectory(d.table)
	}
	return d.dir.Shard(context.Background(), d.table, k)
}

// KeyText is the canonical text of a non-NULL key: decimal for int, the
// bytes for text, the 8-4-4-4-12 lower-case form for uuid. Keys equal in
// Postgres have equal KeyText, so it serves as a cache key and as the text
// parameter of a lookup query.
func KeyText(t Type, k Key) string {
	switch t {
	case TypeInt:
		return strconv.FormatInt(k.Int, 10)
	case TypeUUID:
		if len(k.Bytes) != uuidLen {
			return string(k.Bytes)
		}
		var b [36]byte
		hex.Encode(b[0:8], k.Bytes[0:4])
		b[8] = '-'
		hex.Encode(b[9:13], k.Bytes[4:6])
		b[13] = '-'
		hex.Encode(b[14:18], k.Bytes[6:8])
		b[18] = '-'
		hex.Encode(b[19:23], k.Bytes[8:10])
		b[23] = '-'
		hex.Encode(b[24:36], k.Bytes[10:16])
		return string(b[:])
	}
	return string(k.Bytes)
}

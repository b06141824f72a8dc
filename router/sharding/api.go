package sharding

import (
	"fmt"
	"strings"

	"github.com/pgrouter/pgrouter/config"
)

// Type is the SQL type of a shard key column.
type Type uint8

const (
	TypeInvalid Type = iota
	TypeInt          // smallint / integer / bigint: all hash alike (see doc.go)
	TypeText         // text / varchar, compared bytewise (C collation)
	TypeUUID         // uuid, 16 raw bytes
)

// String returns the config spelling of t ("int", "text", "uuid").
func (t Type) String() string {
	switch t {
	case TypeInt:
		return "int"
	case TypeText:
		return "text"
	case TypeUUID:
		return "uuid"
	}
	return fmt.Sprintf("Type(%d)", uint8(t))
}

// ParseType parses the `type` of a sharded table: "int", "text" or "uuid"
// (case-insensitive; the SQL names bigint, integer, smallint, int2/4/8 and
// varchar are accepted as aliases).
func ParseType(s string) (Type, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "int", "integer", "bigint", "smallint", "int2", "int4", "int8":
		return TypeInt, nil
	case "text", "varchar", "character varying":
		return TypeText, nil
	case "uuid":
		return TypeUUID, nil
	}
	return TypeInvalid, fmt.Errorf("sharding: unknown key type %q (want int, text or uuid)", s)
}

// Key is one shard-key value.
//
//   - TypeInt: Int.
//   - TypeText: Bytes (UTF-8).
//   - TypeUUID: Bytes (exactly 16 raw bytes).
//
// Null marks SQL NULL; the other fields are then ignored. Bytes may alias the
// buffer the key was parsed from (KeyFromText/KeyFromBinary never copy text),
// so a Key must not outlive that buffer.
type Key struct {
	Null  bool
	Int   int64
	Bytes []byte
}

// Func maps a key to a shard index (0-based, in the order of the shards list).
// Errors are *pgconn.PgError, ready to send to the client.
// Implementations are immutable and safe for concurrent use.
type Func interface {
	Shard(k Key) (int, error)
}

// New builds the sharding function of one table from its configuration.
// shards is the ordered list of shard names (shard i is hash REMAINDER i).
// Configuration mistakes (unknown shard names, unparsable bounds, overlapping
// ranges, duplicate list values) are returned as plain errors.
//
// For function "directory" New returns a Func whose Shard fails for every
// non-NULL key: directory lookups need I/O; NewWithDirectory injects it.
func New(t *config.ShardedTable, shards []string) (Func, error) {
	return newFunc(t, shards, nil)
}

package merge

import "fmt"

// Type OIDs the engine understands (pg_type.dat).
const (
	oidBool        = 16
	oidName        = 19
	oidInt8        = 20
	oidInt2        = 21
	oidInt4        = 23
	oidText        = 25
	oidOID         = 26
	oidFloat4      = 700
	oidFloat8      = 701
	oidBpchar      = 1042
	oidVarchar     = 1043
	oidDate        = 1082
	oidTimestamp   = 1114
	oidTimestamptz = 1184
	oidNumeric     = 1700
	oidUUID        = 2950
)

// typeNames names types in error messages, including common ones the engine
// refuses to compare.
var typeNames = map[uint32]string{
	oidBool: "boolean", oidName: "name", oidInt8: "bigint", oidInt2: "smallint", oidInt4: "integer",
	oidText: "text", oidOID: "oid", oidFloat4: "real", oidFloat8: "double precision", oidBpchar: "character",
	oidVarchar: "character varying", oidDate: "date", oidTimestamp: "timestamp without time zone",
	oidTimestamptz: "timestamp with time zone", oidNumeric: "numeric", oidUUID: "uuid",
	17: "bytea", 114: "json", 3802: "jsonb", 1083: "time", 1266: "time with time zone", 1186: "interval",
	790: "money", 869: "inet", 650: "cidr", 18: "\"char\"", 1560: "bit", 1562: "bit varying", 142: "xml",
}

func typeName(oid uint32) string {
	if n, ok := typeNames[oid]; ok {
		return n
	}
	return fmt.Sprintf("type OID %d", oid)
}

// kind is how values of a type are compared.
type kind uint8

const (
	kindInt     kind = iota + 1 // int2, int4, int8, oid
	kindFloat                   // float4, float8
	kindNumeric                 // numeric
	kindBytes                   // text-like (C collation: bytewise), uuid
	kindBool                    // bool
	kindTime                    // date (days), timestamp(tz) (microseconds)
)

// kindOf maps a type to its comparison kind; 0 for types the engine cannot
// compare.
func kindOf(oid uint32) kind {
	switch oid {
	case oidInt2, oidInt4, oidInt8, oidOID:
		return kindInt
	case oidFloat4, oidFloat8:
		return kindFloat
	case oidNumeric:
		return kindNumeric
	case oidText, oidVarchar, oidBpchar, oidName, oidUUID:
		return kindBytes
	case oidBool:
		return kindBool
	case oidDate, oidTimestamp, oidTimestamptz:
		return kindTime
	}
	return 0
}

// column is what the engine knows about one shard result column.
type column struct {
	name   string
	oid    uint32
	format int16
	kind   kind
}

// checkComparable refuses a column the merge must compare but cannot.
func (c column) checkComparable(why string) error {
	if c.kind == 0 {
		return unsupported(fmt.Sprintf("%s on column %q of type %s", why, c.name, typeName(c.oid)),
			"multi-shard merges compare only integer, numeric, float, text, boolean, date, timestamp and uuid values")
	}
	return nil
}

package router

import "strings"

// builtinWriteFunctions route a statement to the primary wherever they are
// called in it. See doc.go for why each is here.
var builtinWriteFunctions = []string{
	"nextval", "setval",
	"currval", "lastval", // session-local: the value lives in the primary backend that ran nextval
	"txid_current", "pg_current_xact_id", // assign a transaction id: fails on a standby
	"set_config", // changes a setting; with is_local=false it is also a pin (see pinFunctions)
	"pg_notify",
	"lo_create", "lo_creat", "lo_import", "lo_export", "lo_unlink", "lo_open", "lo_write", "lowrite",
	"lo_put", "lo_truncate", "lo_truncate64", "lo_from_bytea",
	"pg_switch_wal", "pg_create_restore_point", "pg_logical_emit_message",
	"pg_create_physical_replication_slot", "pg_create_logical_replication_slot",
	"pg_drop_replication_slot", "pg_copy_physical_replication_slot", "pg_copy_logical_replication_slot",
	"pg_replication_origin_create", "pg_replication_origin_drop",
}

// isAdvisory reports the advisory-lock family: all of it goes to the primary
// (locks taken on a replica would not exclude writers on the primary).
func isAdvisory(name string) bool {
	return strings.HasPrefix(name, "pg_advisory_") || strings.HasPrefix(name, "pg_try_advisory_")
}

// isSessionAdvisoryLock reports the advisory locks held until the session
// ends (not the _xact_ ones, released at transaction end): they pin.
func isSessionAdvisoryLock(name string) bool {
	switch name {
	case "pg_advisory_lock", "pg_advisory_lock_shared", "pg_try_advisory_lock", "pg_try_advisory_lock_shared":
		return true
	}
	return false
}

// writeFuncSet holds lower-case "name" and "schema.name" entries.
type writeFuncSet map[string]bool

func newWriteFuncSet(extra []string) writeFuncSet {
	s := writeFuncSet{}
	for _, f := range builtinWriteFunctions {
		s[f] = true
	}
	for _, f := range extra {
		s[strings.ToLower(strings.TrimSpace(f))] = true
	}
	return s
}

// has matches an unqualified entry against any schema, a qualified one exactly.
func (s writeFuncSet) has(schema, name string) bool {
	if s[name] || isAdvisory(name) {
		return true
	}
	return schema != "" && s[schema+"."+name]
}

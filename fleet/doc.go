// Package fleet runs several pgrouters as one, with etcd as the shared store.
//
//	pgrouter config push FILE ──txn──▶ <prefix>/config/{version,doc}
//	                                        │ watch (and a poll that catches up after an outage)
//	every member ◀──────────────────────────┘ applies a version whole (Local.ApplyConfig)
//	  <prefix>/members/<id>      address, applied version, health; under the member's lease
//	  <prefix>/ops/<op>          a fleet-wide operation (PAUSE, RESUME, RELOAD, …)
//	  <prefix>/acks/<op>/<id>    each member's acknowledgement: the barrier
//	  <prefix>/budget/alloc      each member's share of the connection budget (CAS)
//	  <prefix>/2pc/…             two-phase commit decisions and their owners
//	  <prefix>/reshard/<id>      a reshard run by one member: every member's marks,
//	                             holds and switch follow it (reshard.go)
//
// The package knows pgrouter only through the Local interface and
// config.Config; cmd/pgrouter wires it to a proxy.Instance. When etcd cannot
// be reached, members keep serving the last version they applied, report it
// (pgrouter_fleet_etcd_up, logs) and refuse fleet changes with ErrUnreachable.
package fleet

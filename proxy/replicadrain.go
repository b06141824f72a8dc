package proxy

import (
	"bytes"
	"slices"

	"github.com/pgrouter/pgrouter/pgwire"
	"github.com/pgrouter/pgrouter/router"
)

// A read bound on a replica in an implicit transaction left open (Flush,
// no Sync), then a write in the same batch: the write must run on the
// primary, so the replica's batch ends first (leaveReplicaBatch), and with
// it its portals. Postgres keeps them until the client's Sync, so the
// client may still Execute the read. Before leaving, the open SELECT
// portals are run to their end on the replica and kept in the proxy
// (keptPortal, until the client's Sync) — the rows are those Postgres
// would give: a SELECT portal's snapshot is taken at Bind. A portal whose
// rows exceed keptPortalMax, or that fails, is not kept (a later Execute
// of it gets 34000, as before).
//
// What the client would have got along with those rows is kept with them:
// the notices the portal raises while running (RAISE NOTICE in a function
// it calls), each in its place among the rows (keptPortal.fetch). Notices
// of Bind (planning, a function folded to a constant) already reached the
// client with its BindComplete, and a Describe of a portal raises none.
// Nothing else comes before the drain's end: ParameterStatus and NOTIFY
// wait for a ReadyForQuery, and the drain ends with a Flush.

// noteReplicaRead records a portal bound on a replica in an implicit
// transaction's open batch for a single SELECT.
func (ss *session) noteReplicaRead(portal string, plan *router.Plan) {
	if ss.be.primary || plan == nil || !plan.Select || !ss.portalsEndAtSync() {
		return
	}
	if !slices.Contains(ss.replicaReads, portal) {
		ss.replicaReads = append(ss.replicaReads, portal)
	}
}

// forgetReplicaRead drops a portal the client Closed.
func (ss *session) forgetReplicaRead(portal string) {
	if i := slices.Index(ss.replicaReads, portal); i >= 0 {
		ss.replicaReads = slices.Delete(ss.replicaReads, i, i+1)
	}
}

// drainReplicaReads runs every recorded portal to its end (Describe and
// Execute, then Flush: the batch stays open for the caller's Sync) and
// keeps what the client has not fetched yet.
func (ss *session) drainReplicaReads() error {
	names := ss.replicaReads
	ss.replicaReads = ss.replicaReads[:0]
	if len(names) == 0 || ss.failed {
		return nil
	}
	b := ss.be
	out := ss.bout[:0]
	for _, name := range names {
		out = appendFrame(out, pgwire.Describe, append(append([]byte{pgwire.ObjectPortal}, name...), 0))
		out = appendFrame(out, pgwire.Execute, append(append([]byte(name), 0), 0, 0, 0, 0))
	}
	out = append(out, pgwire.Flush, 0, 0, 0, 4)
	ss.bout = out[:0]
	if err := b.sendAwait(out); err != nil {
		return ss.backendLost(err)
	}
	for _, name := range names {
		p, size, ok := &keptPortal{}, 0, true
		for done := false; !done; {
			typ, body, err := b.next()
			if err != nil {
				return ss.backendLost(err)
			}
			switch typ {
			case pgwire.RowDescription:
				p.desc = bytes.Clone(body)
			case pgwire.DataRow:
				if size += len(body); size > keptPortalMax {
					ok = false
				}
				if ok {
					p.rows = append(p.rows, bytes.Clone(body))
				}
			case pgwire.NoticeResponse:
				if size += len(body); size > keptPortalMax {
					ok = false
				}
				if ok {
					p.notices = append(p.notices, keptNotice{at: len(p.rows), body: bytes.Clone(body)})
				}
			case pgwire.CommandComplete:
				done = true
				ok = ok && bytes.HasPrefix(body, []byte("SELECT "))
			case pgwire.ErrorResponse:
				b.disarm()
				return nil // the rest is skipped up to the caller's Sync
			case pgwire.EmptyQueryResponse, pgwire.PortalSuspended:
				done, ok = true, false
			}
		}
		if ok {
			ss.keep(name, p)
			ss.keptToSync = true
		}
	}
	b.disarm()
	return nil
}

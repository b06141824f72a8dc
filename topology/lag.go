package topology

import (
	"time"
)

// storeReplicaLag computes a replica's lag from its check and the shard's
// primary samples, and applies the lag bounds with hysteresis.
//
// Bytes: reference − replay LSN, where the reference is the newer of the
// primary's latest sample and the replica's own receive LSN (so lag stays
// measurable while the primary is down or not sampled yet; a primary sample
// a little older than the replica's only under-reports by one interval).
//
// Seconds: zero when the primary's latest sample is not past the replay LSN
// (an idle cluster is not lagging, however old the last replayed commit; the
// receive LSN stands in only when the primary was never sampled). Otherwise
// the smaller of (server now − last replayed commit time) and (now − arrival
// of the first primary sample past the replay LSN): the latter keeps a single
// new WAL record after hours of idleness from looking like hours of lag.
//
// NULL replay LSN → lag unknown → not eligible (never treated as zero).
func (m *monitor) storeReplicaLag(st *settings, res checkResult) {
	n := m.node
	if res.lsn == 0 {
		n.lagKnown.Store(false)
		return
	}
	// bytesRef: the newest position known to exist; timeRef: the primary's
	// own position (the receive LSN only when the primary was never sampled).
	bytesRef, timeRef := res.receiveLSN, res.receiveLSN
	if latest := n.shard.latest.Load(); latest != nil {
		bytesRef, timeRef = max(bytesRef, latest.lsn), latest.lsn
	}
	var lagBytes int64
	if bytesRef > res.lsn {
		lagBytes = int64(bytesRef - res.lsn)
	}
	var lag time.Duration
	if timeRef > res.lsn {
		lag = -1
		if res.replayAgeOK {
			lag = res.replayAge
		}
		if since, ok := n.shard.behindSince(res.lsn); ok {
			if d := time.Since(since); lag < 0 || d < lag {
				lag = d
			}
		}
		lag = max(lag, 0) // nothing replayed yet and no dated sample: the byte bound decides
	}
	n.lsn.Store(res.lsn)
	n.receiveLSN.Store(res.receiveLSN)
	n.lagBytes.Store(lagBytes)
	n.lagNanos.Store(int64(lag))
	m.applyLagBounds(st, lagBytes, lag)
	n.lagKnown.Store(true)
}

// applyLagBounds takes a replica out of rotation above either bound and puts
// it back only once it is under half of every bound, so it does not flap.
func (m *monitor) applyLagBounds(st *settings, lagBytes int64, lag time.Duration) {
	n := m.node
	over := (st.maxLagBytes > 0 && lagBytes > st.maxLagBytes) || (st.maxLag > 0 && lag > st.maxLag)
	under := (st.maxLagBytes == 0 || lagBytes < st.maxLagBytes/2) && (st.maxLag == 0 || lag < st.maxLag/2)
	switch {
	case over && !n.outOfRot.Load():
		n.outOfRot.Store(true)
		m.t.log.Warn("replica out of rotation: lagging", "shard", n.Shard, "node", n.Name, "role", RoleReplica.String(),
			"lag_bytes", lagBytes, "lag_seconds", lag.Seconds())
		m.t.noteNoReadableReplica(st, n.Shard)
	case under && n.outOfRot.Load():
		n.outOfRot.Store(false)
		m.t.log.Info("replica back in rotation", "shard", n.Shard, "node", n.Name, "role", RoleReplica.String(),
			"lag_bytes", lagBytes, "lag_seconds", lag.Seconds())
	}
}

// noteNoReadableReplica logs the routing anomaly "no replica of shard may
// serve reads" when it starts: from now on its reads go to the primary
// (reason lag_fallback, counted per query in pgrouter_route_decisions_total)
// or fail, per replicas.fallback. Logged per event, not per query.
func (t *Topology) noteNoReadableReplica(st *settings, shard string) {
	for _, sh := range t.Snapshot().Shards {
		if sh.Name != shard || sh.replicas == 0 {
			continue
		}
		for _, n := range sh.Nodes {
			if n.servesReads() {
				return
			}
		}
		if st.fallbackError {
			t.log.Warn("no replica serves reads: reads of the shard fail until one is back (replicas.fallback: error)",
				"shard", shard, "sqlstate", sh.errNoReplica.Code)
		} else {
			t.log.Warn("no replica serves reads: reads of the shard fall back to the primary",
				"shard", shard, "reason", ReasonLagFallback)
		}
	}
}

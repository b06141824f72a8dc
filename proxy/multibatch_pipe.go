package proxy

import (
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgrouter/pgrouter/pgwire"
)

// Running a batch over shards one statement at a time costs a round trip
// per statement. In the batch's own implicit transaction that is not
// needed: an error anywhere rolls the whole batch back at Sync, so the
// statements that follow it may as well have run. There the segments are
// pipelined: a run of them is written at once (one write per shard), then
// the answers are relayed in the client's order; after the first error the
// rest are read and dropped, as Postgres would not have answered them.
// Inside the client's transaction (where ROLLBACK TO could keep what ran
// after an error) and for statements that need several shards, segments
// still run one by one.

// pipeRun bounds what is written to one backend before its answers are
// read: far below a socket's buffers, so neither side can block the other.
const pipeRun = 32 << 10

// pipe is one backend's share of a pipelined run.
type pipe struct {
	b     *binding
	bout  []byte
	queue []expect
}

// pipedSegment is a segment encoded into a pipe: its expectations are
// pipe.queue[from:to].
type pipedSegment struct {
	p        *pipe
	from, to int
}

// runSegments runs the segments of a batch over shards in order, stopping
// at the first error.
func (ss *session) runSegments(segs []segment) error {
	for len(segs) > 0 && !ss.span.failed {
		n := 1
		var err error
		if ss.span.implicit && !multiShardRoute(segs[0].route) {
			n, err = ss.runPipelined(segs)
		} else {
			err = ss.runSegment(segs[0])
		}
		if err != nil {
			return err
		}
		segs = segs[n:]
	}
	return nil
}

// runPipelined writes a run of single-shard segments from the head of segs
// (up to pipeRun bytes per backend) and relays their answers; n is how many
// it took. A segment pgrouter refuses ends the run: the batch fails there,
// after the answers of the segments before it.
func (ss *session) runPipelined(segs []segment) (n int, err error) {
	var pipes []*pipe
	var run []pipedSegment
	var refused *pgconn.PgError
	defer func() { ss.queue, ss.qstore, ss.bout = nil, nil, nil }() // the pipes' arrays are theirs
	for n < len(segs) && !multiShardRoute(segs[n].route) {
		var ps pipedSegment
		if ps, refused, err = ss.encodePiped(segs[n], &pipes); refused != nil || err != nil {
			n++
			break
		}
		run = append(run, ps)
		n++
		if len(ps.p.bout) >= pipeRun {
			break
		}
	}
	if err != nil {
		return n, err
	}
	for _, p := range pipes {
		if err := writeAll(p.b.conn.NetConn, p.bout); err != nil {
			ss.switchTo(p.b)
			return n, ss.backendLost(err)
		}
	}
	for _, ps := range run {
		if err := ss.relayPiped(ps); err != nil {
			return n, err
		}
	}
	if refused != nil && !ss.span.failed {
		ss.spanFailed(refused)
	}
	return n, nil
}

// encodePiped encodes s into the pipe of its backend (made on first use);
// refused says why pgrouter cannot run it.
func (ss *session) encodePiped(s segment, pipes *[]*pipe) (ps pipedSegment, refused *pgconn.PgError, err error) {
	ss.queue, ss.qstore, ss.bout = nil, nil, nil
	if err := ss.spanBackend(s.route, s.plan, s.executes); err != nil {
		return ps, toPgError(err), nil
	}
	var p *pipe
	for _, q := range *pipes {
		if q.b == ss.be {
			p = q
		}
	}
	if p == nil {
		p = &pipe{b: ss.be}
		*pipes = append(*pipes, p)
	}
	ss.bout, ss.queue, ss.qstore = p.bout, p.queue, nil
	from := len(p.queue)
	err = ss.appendSegment(s)
	p.bout, p.queue = ss.bout, ss.queue
	return pipedSegment{p: p, from: from, to: len(p.queue)}, nil, err
}

// relayPiped relays one pipelined segment's answers, or, after the batch
// failed, reads and drops them.
func (ss *session) relayPiped(ps pipedSegment) error {
	ss.switchTo(ps.p.b)
	ss.queue = ps.p.queue[ps.from:ps.to:ps.to]
	if !ss.span.failed {
		return ss.spanRelay()
	}
	parsed := 0
	_, lost := ps.p.b.readUntilReady(func(typ byte, _ []byte) {
		if typ == pgwire.ParseComplete {
			parsed++
		}
	})
	if lost != nil {
		return ss.backendLost(lost)
	}
	for i := len(ss.queue) - 1; i >= 0; i-- { // as if skipped (latest first: see skipToSync)
		if e := ss.queue[i]; e.kind == pgwire.Parse && e.parsed != nil {
			ss.unregisterStmt(e.client, e.parsed, e.prev)
		}
	}
	for _, e := range ss.queue { // Postgres would not have run them
		if e.kind != pgwire.Parse {
			continue
		}
		switch {
		case e.synth != nil: // answered locally, not sent
		case parsed > 0:
			parsed--
		case e.stmt != "":
			ps.p.b.conn.Prepared.Remove(e.stmt)
		}
	}
	ss.queue = nil
	return nil
}

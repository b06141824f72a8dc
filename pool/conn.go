package pool

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// Cancel sends a CancelRequest for this backend's current query on a new
// connection to Addr, then waits for the server to close that connection
// (as libpq does), so the request has been processed when Cancel returns.
func (c *Conn) Cancel(ctx context.Context) error {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", c.Addr)
	if err != nil {
		return fmt.Errorf("cancel request to %s: %w", c.Addr, err)
	}
	defer nc.Close()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(5 * time.Second)
	}
	if err := nc.SetDeadline(deadline); err != nil {
		return fmt.Errorf("cancel request to %s: %w", c.Addr, err)
	}
	msg := pgproto3.CancelRequest{ProcessID: c.PID, SecretKey: c.cancelKey()}
	buf, err := msg.Encode(nil)
	if err != nil {
		return fmt.Errorf("cancel request to %s: %w", c.Addr, err)
	}
	if _, err := nc.Write(buf); err != nil {
		return fmt.Errorf("cancel request to %s: %w", c.Addr, err)
	}
	if _, err := io.Copy(io.Discard, nc); err != nil {
		return fmt.Errorf("cancel request to %s: waiting for the server to close: %w", c.Addr, err)
	}
	return nil
}

// cancelKey is the key as the server sent it, or SecretKey for a Conn built by hand.
func (c *Conn) cancelKey() []byte {
	if len(c.secretKey) > 0 {
		return c.secretKey
	}
	return binary.BigEndian.AppendUint32(nil, c.SecretKey)
}

// ping runs an empty simple Query and reads through ReadyForQuery, proving the
// backend is alive and idle. It reads exact frames straight off the socket so
// nothing is left buffered for the proxy. It does not allocate on success.
func (c *Conn) ping(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := c.NetConn.SetDeadline(deadline); err != nil {
		return fmt.Errorf("health check: %w", err)
	}
	defer c.NetConn.SetDeadline(time.Time{})
	q := append(c.scratch[:0], 'Q', 0, 0, 0, 5, 0) // Query "" → EmptyQueryResponse, ReadyForQuery
	if _, err := c.NetConn.Write(q); err != nil {
		return fmt.Errorf("health check: %w", err)
	}
	for {
		typ, body, err := c.readFrame()
		if err != nil {
			return fmt.Errorf("health check: %w", err)
		}
		switch typ {
		case 'Z':
			if len(body) != 1 || body[0] != 'I' {
				return fmt.Errorf("health check: backend not idle (ReadyForQuery %q)", body)
			}
			return nil
		case 'E':
			var e pgproto3.ErrorResponse
			if err := e.Decode(body); err != nil {
				return fmt.Errorf("health check: undecodable ErrorResponse: %w", err)
			}
			return fmt.Errorf("health check: backend error %s: %s", e.Code, e.Message)
		case 'I', 'N', 'S', 'A': // EmptyQueryResponse, notices, parameter status, notifications
		default:
			return fmt.Errorf("health check: unexpected message %q", typ)
		}
	}
}

// readFrame reads one backend message. Bodies that fit in scratch use it;
// larger ones (rare: long notices) get their own buffer.
func (c *Conn) readFrame() (byte, []byte, error) {
	hdr := c.scratch[:5]
	if _, err := io.ReadFull(c.NetConn, hdr); err != nil {
		return 0, nil, err
	}
	typ := hdr[0]
	n := int(binary.BigEndian.Uint32(hdr[1:5])) - 4
	if n < 0 || n > 1<<24 {
		return 0, nil, errors.New("invalid message length")
	}
	body := c.scratch[:0]
	if n > len(c.scratch) {
		body = make([]byte, n)
	}
	body = body[:n]
	if _, err := io.ReadFull(c.NetConn, body); err != nil {
		return 0, nil, err
	}
	return typ, body, nil
}

// close says Terminate (so the server logs no "unexpected EOF"), waits up to
// closeWait for the server to close its end, and closes the socket. The wait
// is what makes "closed" mean gone: Postgres clears the backend from
// pg_stat_activity and frees its max_connections slot before its socket
// closes, so a slot freed after close is never counted twice (the fleet's
// connection budget relies on it). Best effort: the conn may already be
// dead (EOF or a reset ends the wait at once) or its node frozen (the wait
// ends at closeWait).
func (c *Conn) close() {
	_ = c.NetConn.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	if _, err := c.NetConn.Write(append(c.scratch[:0], 'X', 0, 0, 0, 4)); err == nil {
		_ = c.NetConn.SetReadDeadline(time.Now().Add(closeWait))
		_, _ = io.Copy(io.Discard, c.NetConn)
	}
	_ = c.NetConn.Close()
}

// closeWait bounds how long close waits for the server to end the
// connection after Terminate (Postgres takes about a millisecond).
const closeWait = time.Second

package proxy

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"slices"

	"github.com/pgrouter/pgrouter/pgwire"
	"github.com/pgrouter/pgrouter/pool/sockio"

	"github.com/jackc/pgx/v5/pgconn"
)

// maxMessageLen bounds a single protocol message from a backend (Postgres's
// own limit is 1 GB; we refuse absurd lengths early so a corrupt stream
// cannot make us allocate gigabytes). Client messages have their own bound,
// limits.max_message_size, and smaller ones before login (startup.go).
const maxMessageLen = 256 << 20

// shrinkAbove is the capacity beyond which a buffer grown for one large
// message is dropped once that message has been handled: keeping 1 MiB saves
// re-growing for common big rows, dropping more keeps idle clients cheap.
const shrinkAbove = 1 << 20

// frameReader reads whole protocol messages as raw bytes. The returned body
// aliases the reader's buffer and is valid only until the next call: relaying
// a message is then a single copy into the outgoing buffer, with no decode.
//
// A reader with a lender (client connections on plain TCP) holds no buffer
// while it waits for a message to start: the buffer goes back to the lender
// whenever everything read has been handled, and the next read takes one only
// once the socket has data (sockio's ReadLent). An idle client then costs no
// read buffer, and memory follows the clients that are talking.
type frameReader struct {
	src  io.Reader
	size int     // buffer size
	buf  []byte  // buf[r:w] is read but not yet returned; nil while lent back
	r, w int     //
	lent *[]byte // buf as taken from lend
	lend sockio.Lender
	big  []byte // reused for messages larger than the buffer
	max  int    // longest body accepted; 0 = maxMessageLen
	// params, on a backend's reader, receives every ParameterStatus it reads,
	// whichever code reads it: the proxy's own statements too (a SET LOCAL
	// undone by an error raised there is reported in their answers).
	params map[string]string
}

// lentReader is a connection that can wait for data without a buffer (see
// sockio.ReadLent).
type lentReader interface {
	ReadLent(l sockio.Lender) (*[]byte, int, error)
}

func newFrameReader(rd io.Reader, size int) *frameReader {
	return &frameReader{src: rd, size: size}
}

// lendTo makes f give its buffer back to pool while it waits for a message
// (when its source can read that way) and preloads pending, bytes that
// arrived before f took over the connection.
func (f *frameReader) lendTo(l sockio.Lender, pending []byte) {
	if _, ok := f.src.(lentReader); ok {
		f.lend = l
	}
	if len(pending) > 0 {
		f.buf = make([]byte, max(f.size, len(pending)))
		f.w = copy(f.buf, pending)
	}
}

func (f *frameReader) reset(rd io.Reader) {
	f.src = rd
	f.r, f.w = 0, 0
}

// buffered is how many bytes the peer sent beyond the last message (the TLS
// upgrade refuses any: they were not encrypted).
func (f *frameReader) buffered() int { return f.w - f.r }

// errMessageTooLong is a length prefix beyond the reader's bound; the length
// is checked before anything is allocated for the body.
type errMessageTooLong struct {
	typ byte // 0 for a startup packet
	n   int
}

func (e errMessageTooLong) Error() string {
	if e.typ == 0 {
		return fmt.Sprintf("invalid length of startup packet (%d bytes)", e.n)
	}
	return fmt.Sprintf("invalid message length %d for message type %q", e.n, e.typ)
}

// next returns the next message's type and body.
func (f *frameReader) next() (typ byte, body []byte, err error) {
	if err := f.fill(5); err != nil {
		return 0, nil, err
	}
	hdr := f.buf[f.r:]
	typ = hdr[0]
	body, err = f.body(5, typ, int(binary.BigEndian.Uint32(hdr[1:]))-4)
	if typ == pgwire.ParameterStatus && f.params != nil && err == nil {
		noteParam(f.params, body)
	}
	return typ, body, err
}

// nextStartup returns the body of a startup-phase packet (no type byte: a
// length, then a request code and its payload).
func (f *frameReader) nextStartup() ([]byte, error) {
	if err := f.fill(4); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint32(f.buf[f.r:])) - 4
	if n < 4 { // the request code at least
		return nil, errMessageTooLong{0, n + 4}
	}
	return f.body(4, 0, n)
}

// body returns the n-byte body following a hdr-byte header (of a typ
// message) at the front of the buffer.
func (f *frameReader) body(hdr int, typ byte, n int) ([]byte, error) {
	max := f.max
	if max == 0 {
		max = maxMessageLen
	}
	if n < 0 || n > max {
		return nil, errMessageTooLong{typ, n + 4}
	}
	if hdr+n <= f.size {
		if err := f.fill(hdr + n); err != nil {
			return nil, err
		}
		b := f.buf[f.r+hdr : f.r+hdr+n]
		f.r += hdr + n
		return b, nil
	}
	f.r += hdr
	return f.readBig(n)
}

// fill makes sure at least n bytes (n ≤ f.size) are buffered, reading as
// much as the peer sent. With nothing buffered and a lender, the buffer is
// given back first and taken again only when the socket has data.
func (f *frameReader) fill(n int) error {
	if f.r == f.w {
		f.r, f.w = 0, 0
		if f.lend != nil {
			return f.fillLent(n)
		}
	}
	if f.w-f.r >= n {
		return nil
	}
	if f.buf == nil {
		f.buf = make([]byte, f.size)
	}
	if f.r+n > len(f.buf) { // not enough room behind what is buffered
		f.w = copy(f.buf, f.buf[f.r:f.w])
		f.r = 0
	}
	for f.w-f.r < n {
		m, err := f.src.Read(f.buf[f.w:])
		f.w += m
		if err != nil && f.w-f.r < n {
			return err
		}
	}
	return nil
}

// fillLent is fill from an empty buffer on a reader with a lender.
func (f *frameReader) fillLent(n int) error {
	f.release()
	bp, m, err := f.src.(lentReader).ReadLent(f.lend)
	if err != nil {
		return err
	}
	f.lent, f.buf, f.w = bp, *bp, m
	return f.fill(n)
}

// release gives a lent buffer back; the reader must hold no unread bytes.
func (f *frameReader) release() {
	if f.lent != nil {
		f.lend.Put(f.lent)
	}
	f.lent, f.buf = nil, nil
}

// readBig reads a body larger than the buffer into big. big grows as bytes
// arrive, not to n at once: a header claiming a huge length costs memory
// only for what the peer really sends.
func (f *frameReader) readBig(n int) ([]byte, error) {
	have := min(n, f.w-f.r)
	buf := append(f.big[:0], f.buf[f.r:f.r+have]...)
	f.r += have
	for len(buf) < n {
		step := min(n-len(buf), max(len(buf), 64<<10))
		buf = slices.Grow(buf, step)
		m := len(buf)
		buf = buf[:m+step]
		if _, err := io.ReadFull(f.src, buf[m:]); err != nil {
			f.big = buf[:0]
			return nil, err
		}
	}
	f.big = buf
	return buf, nil
}

// shrink drops a buffer grown for one large message and reports whether it
// did. Call it between messages, never while a body returned by next is
// still in use.
func (f *frameReader) shrink() bool {
	if cap(f.big) > shrinkAbove {
		f.big = nil
		return true
	}
	return false
}

// putBackendReader returns a backend's reader to the pool without a buffer
// grown for one large row.
func putBackendReader(rd *frameReader) {
	rd.shrink()
	backendReaders.Put(rd)
}

// pending returns a copy of the bytes read ahead of the last message (a
// client may send its first messages in the same packet as its login).
func (f *frameReader) pending() []byte {
	return bytes.Clone(f.buf[f.r:f.w])
}

// appendFrame appends a raw message (type + length + body) to dst.
func appendFrame(dst []byte, typ byte, body []byte) []byte {
	dst = append(dst, typ, 0, 0, 0, 0)
	binary.BigEndian.PutUint32(dst[len(dst)-4:], uint32(len(body)+4))
	return append(dst, body...)
}

// appendMsg encodes a pgproto3 message onto dst.
func appendMsg(dst []byte, m interface{ Encode([]byte) ([]byte, error) }) []byte {
	out, err := m.Encode(dst)
	if err != nil {
		// Encode only fails for values we construct wrongly; that is a bug.
		panic(fmt.Sprintf("encode %T: %v", m, err))
	}
	return out
}

// writeAll writes b fully (net.Conn Write already loops until done or error).
func writeAll(c net.Conn, b []byte) error {
	_, err := c.Write(b)
	return err
}

// cstring splits a NUL-terminated string off the front of b.
func cstring(b []byte) (string, []byte, error) {
	for i, c := range b {
		if c == 0 {
			return string(b[:i]), b[i+1:], nil
		}
	}
	return "", nil, errMalformed
}

var errMalformed = &pgconn.PgError{Severity: "FATAL", Code: pgwire.ProtocolViolation, Message: "malformed protocol message"}

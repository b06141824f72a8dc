package proxy

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// maxMessageLen bounds a single protocol message from a client (Postgres's
// own limit for most messages is 1 GB; we refuse absurd lengths early so a
// corrupt or hostile stream cannot make us allocate gigabytes).
const maxMessageLen = 256 << 20

// frameReader reads whole protocol messages as raw bytes. The returned body
// aliases the reader's buffer and is valid only until the next call: relaying
// a message is then a single copy into the outgoing buffer, with no decode.
type frameReader struct {
	r       *bufio.Reader
	discard int    // bytes of the previous frame still in r's buffer
	big     []byte // reused for messages larger than r's buffer
}

func newFrameReader(rd io.Reader, size int) *frameReader {
	return &frameReader{r: bufio.NewReaderSize(rd, size)}
}

func (f *frameReader) reset(rd io.Reader) {
	f.r.Reset(rd)
	f.discard = 0
}

// next returns the next message's type and body.
func (f *frameReader) next() (typ byte, body []byte, err error) {
	if f.discard > 0 {
		f.r.Discard(f.discard)
		f.discard = 0
	}
	hdr, err := f.r.Peek(5)
	if err != nil {
		return 0, nil, err
	}
	typ = hdr[0]
	n := int(binary.BigEndian.Uint32(hdr[1:])) - 4
	if n < 0 || n > maxMessageLen {
		return 0, nil, fmt.Errorf("invalid message length %d for message type %q", n+4, typ)
	}
	if 5+n <= f.r.Size() {
		b, err := f.r.Peek(5 + n)
		if err != nil {
			return 0, nil, err
		}
		f.discard = 5 + n
		return typ, b[5:], nil
	}
	f.r.Discard(5)
	if cap(f.big) < n {
		f.big = make([]byte, n)
	}
	body = f.big[:n]
	if _, err := io.ReadFull(f.r, body); err != nil {
		return 0, nil, err
	}
	return typ, body, nil
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

// appendError encodes e as an ErrorResponse.
func appendError(dst []byte, e *pgconn.PgError) []byte {
	sev := e.Severity
	if sev == "" {
		sev = "ERROR"
	}
	return appendMsg(dst, &pgproto3.ErrorResponse{
		Severity:            sev,
		SeverityUnlocalized: sev,
		Code:                e.Code,
		Message:             e.Message,
		Detail:              e.Detail,
		Hint:                e.Hint,
	})
}

func appendReady(dst []byte, status byte) []byte {
	return append(dst, 'Z', 0, 0, 0, 5, status)
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

var errMalformed = &pgconn.PgError{Severity: "FATAL", Code: "08P01", Message: "malformed protocol message"}

// pgErr builds a client-facing error.
func pgErr(code, msg, hint string) *pgconn.PgError {
	return &pgconn.PgError{Severity: "ERROR", Code: code, Message: msg, Hint: hint}
}

package proxy

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/pgrouter/pgrouter/pgwire"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgrouter/pgrouter/router"
)

// copyRows cuts a COPY FROM STDIN data stream, which arrives in CopyData
// messages of any size, into whole rows, and reads each row's shard key.
// It follows Postgres's own reader (copyfromparse.c): text rows end at an
// unescaped \n, \r or \r\n and a backslash escapes the next byte; CSV rows
// end at a newline outside quotes; binary rows are a field count and
// length-prefixed fields after the PGCOPY header. Rows are handed out as the
// raw bytes the client sent, so each shard parses exactly what Postgres
// would have parsed; only the key is decoded here. Memory is one partial
// row plus the last CopyData message.
type copyRows struct {
	cp  *router.CopyPlan
	buf []byte // unconsumed data; buf[start:] begins at a row boundary
	// start: first byte not yet handed out; pos: scan position inside the
	// current row (text/CSV resume there with inQuote/lastEsc intact).
	start, pos       int
	inQuote, lastEsc bool
	line             int64 // rows handed out so far, header included
	headerDone       bool
	ended            bool   // end-of-data marker (\. line, binary trailer) seen
	scratch          []byte // the unescaped key
}

type rowKind uint8

const (
	rowMore   rowKind = iota // no complete row buffered: feed more data
	rowData                  // a data row: send it to its key's shard
	rowHeader                // HEADER line / binary file header: every shard needs it
	rowEnd                   // end-of-data marker: nothing after it counts
)

var binarySignature = []byte("PGCOPY\n\377\r\n\x00")

func newCopyRows(cp *router.CopyPlan) *copyRows {
	return &copyRows{cp: cp, headerDone: !cp.Header && cp.Format != router.CopyBinary}
}

// feed appends one CopyData payload. Call compact once the rows handed out
// so far have been copied elsewhere.
func (c *copyRows) feed(data []byte) {
	if !c.ended { // Postgres ignores what follows the end-of-data marker
		c.buf = append(c.buf, data...)
	}
}

// compact drops the rows already handed out.
func (c *copyRows) compact() {
	if c.start == 0 {
		return
	}
	n := copy(c.buf, c.buf[c.start:])
	c.buf = c.buf[:n]
	c.pos -= c.start
	c.start = 0
}

// next returns the next complete row (aliasing the buffer until compact or
// feed). final says no more data will come (CopyDone): a last line without
// a newline is then a row.
func (c *copyRows) next(final bool) ([]byte, rowKind, error) {
	if c.ended {
		return nil, rowEnd, nil
	}
	if c.cp.Format == router.CopyBinary {
		return c.nextBinary(final)
	}
	end, ok := c.scanLine(final)
	if !ok {
		return nil, rowMore, nil
	}
	row := c.buf[c.start:end]
	c.start, c.pos, c.inQuote, c.lastEsc = end, end, false, false
	c.line++
	if !c.headerDone {
		c.headerDone = true
		return row, rowHeader, nil
	}
	if bytes.Equal(trimEOL(row), []byte(`\.`)) {
		c.ended = true
		return nil, rowEnd, nil
	}
	return row, rowData, nil
}

// scanLine finds the end (after its newline) of the row starting at start.
func (c *copyRows) scanLine(final bool) (int, bool) {
	csv := c.cp.Format == router.CopyCSV
	q, e := c.cp.Quote, c.cp.Escape
	if e == q {
		e = 0 // as Postgres: a quote doubling as escape is just a toggle
	}
	b := c.buf
	for i := c.pos; i < len(b); i++ {
		ch := b[i]
		if csv {
			if c.inQuote && ch == e {
				c.lastEsc = !c.lastEsc
			}
			if ch == q && !c.lastEsc {
				c.inQuote = !c.inQuote
			}
			if ch != e {
				c.lastEsc = false
			}
			if c.inQuote {
				continue
			}
		}
		switch {
		case ch == '\n':
			return i + 1, true
		case ch == '\r':
			if i+1 == len(b) && !final {
				c.pos = i // is it \r\n? wait for the next byte
				return 0, false
			}
			if i+1 < len(b) && b[i+1] == '\n' {
				return i + 2, true
			}
			return i + 1, true
		case ch == '\\' && !csv:
			if i+1 == len(b) && !final {
				c.pos = i
				return 0, false
			}
			i++ // the escaped byte never ends the line
		}
	}
	c.pos = len(b)
	if final && c.start < len(b) {
		return len(b), true
	}
	return 0, false
}

func trimEOL(row []byte) []byte {
	for len(row) > 0 && (row[len(row)-1] == '\n' || row[len(row)-1] == '\r') {
		row = row[:len(row)-1]
	}
	return row
}

// nextBinary hands out the file header, then one tuple at a time.
func (c *copyRows) nextBinary(final bool) ([]byte, rowKind, error) {
	b := c.buf[c.start:]
	if !c.headerDone {
		if len(b) < 19 {
			return c.binaryShort(final)
		}
		if !bytes.Equal(b[:11], binarySignature) {
			return nil, rowMore, copyFormatError("COPY file signature not recognized")
		}
		n := 19 + int(int32(binary.BigEndian.Uint32(b[15:])))
		if n < 19 {
			return nil, rowMore, copyFormatError("invalid COPY file header (wrong length)")
		}
		if len(b) < n {
			return c.binaryShort(final)
		}
		c.headerDone = true
		c.start += n
		return b[:n], rowHeader, nil
	}
	if len(b) < 2 {
		return c.binaryShort(final)
	}
	fields := int(int16(binary.BigEndian.Uint16(b)))
	if fields == -1 {
		c.ended = true
		return nil, rowEnd, nil
	}
	if fields != c.cp.Columns {
		return nil, rowMore, copyFormatError(fmt.Sprintf("row field count is %d, expected %d", fields, c.cp.Columns))
	}
	off := 2
	for f := 0; f < fields; f++ {
		if len(b) < off+4 {
			return c.binaryShort(final)
		}
		n := int(int32(binary.BigEndian.Uint32(b[off:])))
		off += 4
		if n < -1 {
			return nil, rowMore, copyFormatError("invalid field size")
		}
		if n > 0 {
			off += n
		}
	}
	if len(b) < off {
		return c.binaryShort(final)
	}
	c.start += off
	c.line++
	return b[:off], rowData, nil
}

func (c *copyRows) binaryShort(final bool) ([]byte, rowKind, error) {
	if final && c.start < len(c.buf) {
		return nil, rowMore, copyFormatError("unexpected EOF in COPY data")
	}
	return nil, rowMore, nil
}

func copyFormatError(msg string) *pgconn.PgError {
	return pgwire.Error(pgwire.BadCopyFileFormat, msg, "")
}

// key returns a data row's shard key as the sharding functions take it:
// text/CSV after unescaping, binary raw; nil for NULL.
func (c *copyRows) key(row []byte) ([]byte, error) {
	cp := c.cp
	switch cp.Format {
	case router.CopyBinary:
		return binaryField(row, cp.KeyIndex)
	case router.CopyCSV:
		return c.csvKey(trimEOL(row))
	}
	raw, ok := textField(trimEOL(row), cp.Delimiter, cp.KeyIndex)
	if !ok {
		return nil, c.missing()
	}
	if string(raw) == cp.Null { // Postgres compares before unescaping
		return nil, nil
	}
	c.scratch = unescapeText(c.scratch[:0], raw)
	return c.scratch, nil
}

func (c *copyRows) missing() error {
	return copyFormatError(fmt.Sprintf("missing data for column %q", c.cp.Column))
}

// binaryField returns field i of a binary tuple (nil = NULL).
func binaryField(row []byte, i int) ([]byte, error) {
	off := 2
	for f := 0; ; f++ {
		n := int(int32(binary.BigEndian.Uint32(row[off:])))
		off += 4
		if f == i {
			if n < 0 {
				return nil, nil
			}
			return row[off : off+n], nil
		}
		if n > 0 {
			off += n
		}
	}
}

// textField returns the raw bytes of field i of a text-format line: fields
// split on unescaped delimiters.
func textField(line []byte, delim byte, i int) ([]byte, bool) {
	f, start := 0, 0
	for j := 0; j < len(line); j++ {
		switch line[j] {
		case '\\':
			j++
		case delim:
			if f == i {
				return line[start:j], true
			}
			f++
			start = j + 1
		}
	}
	if f == i {
		return line[start:], true
	}
	return nil, false
}

// unescapeText applies text-format backslash escapes (CopyReadAttributesText).
func unescapeText(dst, raw []byte) []byte {
	for j := 0; j < len(raw); j++ {
		ch := raw[j]
		if ch != '\\' || j+1 == len(raw) {
			dst = append(dst, ch)
			continue
		}
		j++
		ch = raw[j]
		switch {
		case ch >= '0' && ch <= '7':
			v := int(ch - '0')
			for k := 0; k < 2 && j+1 < len(raw) && raw[j+1] >= '0' && raw[j+1] <= '7'; k++ {
				j++
				v = v*8 + int(raw[j]-'0')
			}
			dst = append(dst, byte(v))
		case ch == 'x' && j+1 < len(raw) && isHex(raw[j+1]):
			j++
			v := hexVal(raw[j])
			if j+1 < len(raw) && isHex(raw[j+1]) {
				j++
				v = v*16 + hexVal(raw[j])
			}
			dst = append(dst, byte(v))
		default:
			dst = append(dst, textEscape(ch))
		}
	}
	return dst
}

func textEscape(ch byte) byte {
	switch ch {
	case 'b':
		return '\b'
	case 'f':
		return '\f'
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	case 'v':
		return '\v'
	}
	return ch
}

func isHex(ch byte) bool {
	return ch >= '0' && ch <= '9' || ch >= 'a' && ch <= 'f' || ch >= 'A' && ch <= 'F'
}

func hexVal(ch byte) int {
	switch {
	case ch >= 'a':
		return int(ch-'a') + 10
	case ch >= 'A':
		return int(ch-'A') + 10
	}
	return int(ch - '0')
}

// csvKey reads the key field of a CSV line (CopyReadAttributesCSV plus the
// FORCE_NULL / FORCE_NOT_NULL rules of NextCopyFrom).
func (c *copyRows) csvKey(line []byte) ([]byte, error) {
	cp := c.cp
	j := 0
	for f := 0; ; f++ {
		out, rawEnd, next, quoted, err := csvField(line, j, cp, c.scratch[:0])
		if err != nil {
			return nil, err
		}
		if f == cp.KeyIndex {
			c.scratch = out
			null := !quoted && string(line[j:rawEnd]) == cp.Null
			switch {
			case null && cp.ForceNotNull:
				return []byte(cp.Null), nil
			case null:
				return nil, nil
			case cp.ForceNull && string(out) == cp.Null:
				return nil, nil
			}
			return out, nil
		}
		if next < 0 {
			return nil, c.missing()
		}
		j = next
	}
}

// csvField parses the field starting at j: its value, where its raw text
// ends, where the next field starts (-1: this was the last) and whether
// any part was quoted.
func csvField(line []byte, j int, cp *router.CopyPlan, out []byte) ([]byte, int, int, bool, error) {
	quoted := false
	for j < len(line) {
		ch := line[j]
		j++
		switch ch {
		case cp.Delimiter:
			return out, j - 1, j, quoted, nil
		case cp.Quote:
			quoted = true
			for {
				if j >= len(line) {
					return nil, 0, 0, false, copyFormatError("unterminated CSV quoted field")
				}
				ch = line[j]
				j++
				if ch == cp.Escape && j < len(line) && (line[j] == cp.Escape || line[j] == cp.Quote) {
					out = append(out, line[j])
					j++
					continue
				}
				if ch == cp.Quote {
					break
				}
				out = append(out, ch)
			}
		default:
			out = append(out, ch)
		}
	}
	return out, len(line), -1, quoted, nil
}

package proxy

import (
	"bytes"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pgrouter/pgrouter/pool/sockio"

	"github.com/pgrouter/pgrouter/router"
)

// FuzzClientMessages feeds arbitrary bytes through the framing and the
// decoders the session uses on client input: they must return errors, never
// panic, whatever arrives from the network.
func FuzzClientMessages(f *testing.F) {
	f.Add([]byte{'Q', 0, 0, 0, 9, 's', 'e', 'l', 'e', 0})
	f.Add([]byte{'B', 0, 0, 0, 7, 'x', 0, 'y'})
	f.Add([]byte{'P', 0, 0, 0, 12, 0, 's', 0, 0, 1, 0, 0, 0})
	f.Add([]byte{'X', 0, 0, 0, 4})
	f.Add([]byte{'Q', 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		fr := newFrameReader(bytes.NewReader(data), 64)
		var args router.Args
		var formats []int16
		for i := 0; i < 100; i++ {
			typ, body, err := fr.next()
			if err != nil {
				return
			}
			switch typ {
			case 'P':
				decodeParse(body)
			case 'B':
				decodeBind(body, &args, &formats)
			default:
				cstring(body)
			}
		}
	})
}

func TestFrameReaderRejectsBadLengths(t *testing.T) {
	for _, in := range [][]byte{{'Q', 0, 0, 0, 3}, {'Q', 0x7f, 0xff, 0xff, 0xff}} {
		if _, _, err := newFrameReader(bytes.NewReader(in), 64).next(); err == nil {
			t.Errorf("%v: accepted", in)
		}
	}
	// A message larger than the buffer is read whole.
	big := append([]byte{'Q', 0, 0, 0x10, 4}, bytes.Repeat([]byte{'a'}, 0x1000)...)
	typ, body, err := newFrameReader(bytes.NewReader(big), 64).next()
	if err != nil || typ != 'Q' || len(body) != 0x1000 {
		t.Fatalf("big message: %v %c %d", err, typ, len(body))
	}
}

func TestDecodeBind(t *testing.T) {
	// portal "", statement "s", 1 format (binary), 2 params (NULL, "ab"), 1 result format (text)
	body := []byte{0, 's', 0, 0, 1, 0, 1, 0, 2, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 2, 'a', 'b', 0, 1, 0, 0}
	var args router.Args
	var rf []int16
	m, err := decodeBind(body, &args, &rf)
	if err != nil || m.stmt != "s" || len(args.Params) != 2 || args.Params[0] != nil || string(args.Params[1]) != "ab" ||
		len(args.Formats) != 1 || args.Formats[0] != 1 || len(rf) != 1 || rf[0] != 0 {
		t.Fatalf("decodeBind: %+v %v %+v %v", m, err, args, rf)
	}
}

// TestFrameReaderLent reads messages through a reader that lends its buffer
// back between messages (a client's, on plain TCP): bytes read ahead at
// login, messages split across writes, several in one write, one larger
// than the buffer, and the end of the stream.
func TestFrameReaderLent(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		for _, part := range []string{"lo\x00", "Q\x00\x00", "\x00\x06a\x00Q\x00\x00\x00\x06b\x00", "Q\x00\x00\x00\x54" + strings.Repeat("x", 79) + "\x00"} {
			c.Write([]byte(part))
			time.Sleep(10 * time.Millisecond)
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	lender := &sync.Pool{New: func() any { b := make([]byte, 16); return &b }}
	fr := newFrameReader(sockio.Wrap(c), 16)
	fr.lendTo(lender, []byte("Q\x00\x00\x00\x0ahel"))
	if fr.lend == nil {
		t.Fatal("a reader over a plain TCP socket does not lend its buffer")
	}
	for _, want := range []string{"hello\x00", "a\x00", "b\x00", strings.Repeat("x", 79) + "\x00"} {
		typ, body, err := fr.next()
		if err != nil || typ != 'Q' || string(body) != want {
			t.Fatalf("next = %c %q %v, want Q %q", typ, body, err, want)
		}
	}
	if _, _, err := fr.next(); err != io.EOF {
		t.Fatalf("at end of stream: %v, want io.EOF", err)
	}
	if fr.buf != nil {
		t.Fatal("the buffer was not given back at end of stream")
	}
}

// Command floor is a reference point for `make bench`, not a proxy: it
// forwards bytes between each client and a connection of its own to
// Postgres (no parsing, no pooling, no routing), in one of two I/O shapes:
//
//   - goroutines: two goroutines per client (io.Copy each way) on Go's
//     netpoller, the shape of pgrouter's sessions;
//   - epoll: every socket on one epoll loop in one locked OS thread, with
//     raw syscalls, the shape of PgBouncer's event loop;
//   - coro: that loop, with each client's forwarding a coroutine
//     (iter.Pull) it resumes: blocking-style code on an event loop.
//
// What it costs per transaction is what any Go proxy of that shape pays
// before doing any work of its own (bench/RESULTS.md, "floor").
//
//	floor -mode goroutines|epoll|coro -listen 127.0.0.1:PORT -backend HOST:PORT
package main

import (
	"flag"
	"io"
	"log"
	"net"
)

func main() {
	mode := flag.String("mode", "goroutines", "goroutines | epoll | coro")
	listen := flag.String("listen", "", "address to accept clients on")
	backend := flag.String("backend", "", "Postgres address each client is forwarded to")
	flag.Parse()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	switch *mode {
	case "goroutines":
		err = serveGoroutines(ln, *backend)
	case "epoll":
		err = serveEpoll(ln.(*net.TCPListener), *backend)
	case "coro":
		err = serveCoro(ln.(*net.TCPListener), *backend)
	default:
		log.Fatalf("unknown mode %q", *mode)
	}
	log.Fatal(err)
}

func serveGoroutines(ln net.Listener, backend string) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			b, err := net.Dial("tcp", backend)
			if err != nil {
				return
			}
			defer b.Close()
			go func() {
				io.Copy(b, c)
				b.Close()
			}()
			io.Copy(c, b)
		}()
	}
}

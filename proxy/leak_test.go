package proxy

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"go.uber.org/goleak"

	"github.com/pgrouter/pgrouter/config"
	"github.com/pgrouter/pgrouter/topology"
)

// Hostile and broken clients before login leave no goroutine behind once
// the server has shut down.
func TestNoLeakAfterHostileLogins(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	cfg := &config.Config{
		Users:     []config.User{{Name: "app", Password: "app"}, {Name: "m", Password: "m", Auth: "md5"}},
		Shards:    []config.Shard{{Name: "s0", Primary: config.Node{Addr: "127.0.0.1:1"}}},
		Databases: []config.Database{{Name: "app"}},
		Pool:      config.Pool{LoginTimeout: config.Duration(200 * time.Millisecond)},
	}
	cfg.ApplyDefaults()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	topo, err := topology.New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	defer topo.Close()
	srv, err := New(cfg, topo, log)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	startup := func(user string) []byte {
		return appendMsg(nil, &pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber,
			Parameters: map[string]string{"user": user, "database": "app"}})
	}
	probes := [][]byte{
		nil,                                  // silent
		{0, 0, 0, 50, 0, 3},                  // half a startup packet
		{0x7f, 0xff, 0xff, 0xff, 0, 3, 0, 0}, // 2 GiB startup packet
		append(startup("app"), 'p', 0x7f, 0xff, 0xff, 0xff), // 2 GiB SASL message
		append(startup("m"), 'p', 0, 0, 0, 100),             // truncated password
		append(startup("nobody"), 'X', 0, 0, 0, 4),          // Terminate mid-login
	}
	for _, p := range probes {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.Write(p)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		io.Copy(io.Discard, c) // until pgrouter closes it (login_timeout at most)
		c.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(ctx)
	if err := <-served; err != nil {
		t.Fatal(err)
	}
}

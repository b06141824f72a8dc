package sharding

import (
	"context"
	"fmt"
	"log/slog"
	"testing"

	"github.com/pgrouter/pgrouter/config"
	"github.com/pgrouter/pgrouter/proxy"
)

// startOwn starts a pgrouter of the test's own on the package's cluster,
// with the package's config changed by adjust (nil: none); it is closed
// when the test ends. It returns the instance and the app user's DSN.
func startOwn(t *testing.T, adjust func(*config.Config)) (*proxy.Instance, string) {
	t.Helper()
	cfg := *env.Config
	cfg.Listen, cfg.Metrics.Listen = "127.0.0.1:0", "off"
	if adjust != nil {
		adjust(&cfg)
	}
	inst, err := proxy.Start(context.Background(), &cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { inst.Close(context.Background()) })
	return inst, fmt.Sprintf("postgres://app:app@%s/app?sslmode=disable", inst.Addr)
}

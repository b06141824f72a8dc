package wire

import (
	"context"
	"testing"
	"time"

	"github.com/pgrouter/pgrouter/proxy"
)

func TestZZDbg(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, _ := loadScripts("testdata")
	for _, x := range s {
		if x.name != "copy_out_in_txn_then_parse_error" {
			continue
		}
		inst, err := proxy.Start(ctx, coldConfig, discardLog())
		if err != nil {
			t.Fatal(err)
		}
		tr := runOn(ctx, t, proxyDSN(inst.Addr), profiles[0], x, proxyTimeout)
		for _, b := range tr {
			t.Logf("%v", b)
		}
		closeInstance(inst)
	}
}

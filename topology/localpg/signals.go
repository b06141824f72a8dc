package localpg

import (
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// handleSignals closes c on SIGINT/SIGTERM and then re-raises the signal,
// so the program still terminates the way it would have without us (or a
// handler of its own sees the signal). The returned func unregisters the
// handler; Close calls it.
func handleSignals(c *Cluster) (stop func()) {
	ch := make(chan os.Signal, 1)
	done := make(chan struct{})
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		select {
		case sig := <-ch:
			signal.Stop(ch)
			c.env.logf("localpg: %v: stopping the cluster in %s", sig, c.Dir)
			_ = c.Close()
			if s, ok := sig.(syscall.Signal); ok {
				_ = syscall.Kill(os.Getpid(), s)
			}
		case <-done:
			signal.Stop(ch)
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done) }) }
}

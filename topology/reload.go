package topology

import (
	"errors"
	"fmt"

	"github.com/pgrouter/pgrouter/config"
)

// ErrIncompatibleReload is returned (wrapped) by Reload when the new
// configuration would move rows between shards: the shard list (count or
// order) or a sharded table's placement changed. Pass force to apply anyway.
var ErrIncompatibleReload = errors.New("reload changes data placement")

// Reload swaps in a snapshot built from cfg. Nodes whose (shard, addr, name)
// are unchanged keep their state, pools and monitors; new nodes are checked
// once and monitored; removed nodes' monitors stop and their pools close
// (checked-out backends close when released). Sessions holding the old
// snapshot finish on it.
func (t *Topology) Reload(cfg *config.Config, force bool) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return errors.New("topology: closed")
	}
	old := t.snap.Load()
	if !force {
		if err := placementChanged(old.Config, cfg); err != nil {
			return fmt.Errorf("topology: %w: %w", ErrIncompatibleReload, err)
		}
	}
	reuse := map[nodeKey]*Node{}
	for _, n := range old.nodes {
		reuse[nodeKey{n.Shard, n.Addr, n.Name}] = n
	}
	snap, err := buildSnapshot(cfg, newSettings(cfg), reuse, t.shards, t.newShardState)
	if err != nil {
		return err
	}
	t.install(snap)
	for _, n := range old.nodes {
		if snap.byName[n.Name] == n {
			continue
		}
		if cancel, ok := t.monitors[n]; ok {
			cancel()
			delete(t.monitors, n)
		}
		n.closePools()
	}
	if t.ctx != nil {
		t.startMonitors(snap.nodes)
	}
	t.log.Info("topology reloaded", "shards", len(snap.Shards), "nodes", len(snap.nodes))
	return nil
}

// placementChanged reports why rows would land elsewhere under next
// (config.PlacementChange): appending a spare shard is not a change.
func placementChanged(prev, next *config.Config) error { return config.PlacementChange(prev, next) }

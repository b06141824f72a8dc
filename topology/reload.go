package topology

import (
	"errors"
	"fmt"
	"reflect"
	"slices"

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

// placementChanged reports why rows would land elsewhere under next: the
// ordered shard names differ, or a database present in both configs changed
// its sharded tables.
func placementChanged(prev, next *config.Config) error {
	if !slices.Equal(shardNames(prev), shardNames(next)) {
		return fmt.Errorf("shards %v → %v", shardNames(prev), shardNames(next))
	}
	for _, pd := range prev.Databases {
		for _, nd := range next.Databases {
			if pd.Name == nd.Name && !reflect.DeepEqual(pd.ShardedTables, nd.ShardedTables) {
				return fmt.Errorf("sharded_tables of database %q changed", pd.Name)
			}
		}
	}
	return nil
}

func shardNames(cfg *config.Config) []string {
	names := make([]string, len(cfg.Shards))
	for i, s := range cfg.Shards {
		names[i] = s.Name
		if names[i] == "" {
			names[i] = fmt.Sprintf("shard%d", i)
		}
	}
	return names
}

package topology

// A fleet of pgrouters shares one connection budget per (node, user,
// database); each member may open at most its share (package fleet). The
// cap applies on top of the configured pool size, to pools that exist and
// to pools created later, including after a reload.

// SetPoolCap caps every pool of every node at n backends (n < 0 removes
// the cap: pools go back to their configured size). Pools over the new cap
// close idle backends at once and busy ones as they are released.
func (t *Topology) SetPoolCap(n int) {
	if n < 0 {
		t.poolCap.Store(nil)
	} else {
		t.poolCap.Store(&n)
	}
	t.mu.Lock() // a concurrent Reload swaps the nodes; the new ones read the cap at pool creation
	nodes := t.snap.Load().nodes
	t.mu.Unlock()
	for _, n := range nodes {
		// The map read under poolMu, after the cap was stored: a pool that
		// Node.Pool creates meanwhile (under poolMu) is either in it, and
		// resized here, or created after, with the new cap.
		n.poolMu.Lock()
		pools := *n.pools.Load()
		n.poolMu.Unlock()
		for _, e := range pools {
			e.pool.SetSize(n.cappedSize(n.configuredSize(e.User)))
		}
	}
}

// PoolCap is the cap SetPoolCap set (-1: none).
func (t *Topology) PoolCap() int {
	if c := t.poolCap.Load(); c != nil {
		return *c
	}
	return -1
}

// cappedSize is size under the topology's cap, if any.
func (n *Node) cappedSize(size int) int {
	if n.shard == nil || n.shard.poolCap == nil {
		return size
	}
	if c := n.shard.poolCap.Load(); c != nil {
		return min(size, *c)
	}
	return size
}

// configuredSize is the size the config gives user's pools on n.
func (n *Node) configuredSize(user string) int {
	cfg := n.poolCfg.Load()
	size := cfg.Pool.Size
	for i := range cfg.Users {
		if u := &cfg.Users[i]; u.Name == user && u.PoolSize > 0 {
			size = u.PoolSize
		}
	}
	if size <= 0 {
		size = 20
	}
	return size
}

// MaxPoolTotal is the most backends (open or being dialed) any one pool
// of the current nodes holds: the fleet lowers its share of the budget only
// once this is within it.
func (t *Topology) MaxPoolTotal() int {
	most := 0
	for _, n := range t.snap.Load().nodes {
		for _, e := range *n.pools.Load() {
			most = max(most, e.pool.Stats().Total)
		}
	}
	return most
}

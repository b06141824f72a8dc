package proxy

import (
	"sync"
	"sync/atomic"
)

// childCache maps a label tuple to its metric child without the variadic
// WithLabelValues call (a slice, a hash of every label, a lock) on the hot
// path. Reads are a lock-free load of an immutable map; a miss copies the map
// under a mutex. The key space is bounded by the config (shards × roles ×
// kinds, decision reasons), so the map stays tiny.
type childCache[K comparable, V any] struct {
	m  atomic.Pointer[map[K]V]
	mu sync.Mutex
}

func (c *childCache[K, V]) get(k K, create func(K) V) V {
	if m := c.m.Load(); m != nil {
		if v, ok := (*m)[k]; ok {
			return v
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.m.Load()
	if old != nil {
		if v, ok := (*old)[k]; ok {
			return v
		}
	}
	next := make(map[K]V, 1+len(ptrMap(old)))
	for key, v := range ptrMap(old) {
		next[key] = v
	}
	v := create(k)
	next[k] = v
	c.m.Store(&next)
	return v
}

func ptrMap[K comparable, V any](m *map[K]V) map[K]V {
	if m == nil {
		return nil
	}
	return *m
}

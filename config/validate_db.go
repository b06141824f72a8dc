package config

import (
	"strings"
)

func (c *checker) validateDatabases(cfg *Config) {
	if len(cfg.Databases) == 0 {
		c.errf("databases", "at least one database is required")
	}
	dbNames := c.names("database name")
	for i := range cfg.Databases {
		db := &cfg.Databases[i]
		key := idx("databases", i)
		if c.required(key+".name", db.Name) {
			if db.Name == AdminDatabase {
				c.errf(key+".name", "the name %q is reserved for the admin console", AdminDatabase)
			}
			dbNames.add(key+".name", db.Name)
		}
		c.required(key+".dbname", db.Dbname)
		c.validateUnlisted(cfg, key+".unlisted_tables", db.UnlistedTables)
		c.oneOf(key+".cross_shard", db.CrossShard, "allow", "deny")
		c.oneOf(key+".reference_writes", db.ReferenceWrites, "refuse", "best_effort")
		tables := c.names("table")
		for j := range db.ShardedTables {
			tk := idx(key+".sharded_tables", j)
			t := &db.ShardedTables[j]
			if c.required(tk+".table", t.Table) {
				tables.add(tk+".table", strings.ToLower(t.Table))
			}
			c.validateTable(cfg, tk, t)
		}
		for j, name := range db.ReferenceTables {
			rk := idx(key+".reference_tables", j)
			if c.required(rk, name) {
				tables.add(rk, strings.ToLower(name))
			}
		}
		for j, fn := range db.WriteFunctions {
			c.required(idx(key+".write_functions", j), fn)
		}
	}
}

func (c *checker) validateUnlisted(cfg *Config, key, v string) {
	if name, ok := strings.CutPrefix(v, "shard:"); ok {
		c.shardRef(cfg, key, name, true)
		return
	}
	if v != "error" && v != "reference" {
		c.errf(key, "invalid value %q: must be error, reference or shard:NAME", v)
	}
}

// shardRef checks that a shard named in the config exists.
func (c *checker) shardRef(cfg *Config, key, name string, required bool) {
	if name == "" {
		if required {
			c.errf(key, "a shard name is required")
		}
		return
	}
	if cfg.ShardIndex(name) < 0 {
		c.errf(key, "unknown shard %q (shards: %s)", name, strings.Join(cfg.ShardNames(), ", "))
	}
}

func (c *checker) validateTable(cfg *Config, key string, t *ShardedTable) {
	c.required(key+".column", t.Column)
	typeOK := c.oneOf(key+".type", t.Type, KeyInt, KeyText, KeyUUID)
	if !c.oneOf(key+".function", t.Function, "hash", "range", "list", "directory") {
		return
	}
	c.shardRef(cfg, key+".default", t.Default, false)
	c.shardRef(cfg, key+".null_shard", t.NullShard, false)
	fn := t.Function
	if fn != "range" && len(t.Ranges) > 0 {
		c.errf(key+".ranges", "ranges are only used with function range (this table uses %s)", fn)
	}
	if fn != "list" && len(t.Lists) > 0 {
		c.errf(key+".lists", "lists are only used with function list (this table uses %s)", fn)
	}
	if fn != "directory" && t.Directory != nil {
		c.errf(key+".directory", "directory is only used with function directory (this table uses %s)", fn)
	}
	if fn != "range" && fn != "list" && t.Default != "" {
		c.errf(key+".default", "default is only used with function range or list")
	}
	switch fn {
	case "range":
		if len(t.Ranges) == 0 {
			c.errf(key+".function", "function range needs a ranges list")
		} else if typeOK {
			c.validateRanges(cfg, key, t)
		}
	case "list":
		if len(t.Lists) == 0 {
			c.errf(key+".function", "function list needs a lists list")
		} else if typeOK {
			c.validateLists(cfg, key, t)
		}
	case "directory":
		c.validateDirectory(cfg, key, t.Directory)
	}
}

func (c *checker) validateDirectory(cfg *Config, key string, d *Directory) {
	if d == nil {
		c.errf(key+".function", "function directory needs a directory section (at least node)")
		return
	}
	dk := key + ".directory"
	switch {
	case d.Node == "":
		c.errf(dk+".node", "is required (host:port of the server holding the lookup table, or a node name)")
	case strings.Contains(d.Node, ":"):
		c.hostPort(dk+".node", d.Node, false)
	case cfg.NodeAddr(d.Node) == "":
		c.errf(dk+".node", "unknown node %q: want host:port or the name of a node of the shards", d.Node)
	}
	if d.User != "" && cfg.User(d.User) == nil {
		c.errf(dk+".user", "unknown user %q", d.User)
	}
	c.required(dk+".query", d.Query)
	c.atLeast(dk+".cache_size", d.CacheSize, 0)
	c.nonNegative(dk+".cache_ttl", d.CacheTTL)
	if d.Timeout <= 0 {
		c.errf(dk+".timeout", "must be > 0")
	}
	c.atLeast(dk+".pool_size", d.PoolSize, 1)
	if d.AutoAssign != "" {
		c.required(dk+".assign_query", d.AssignQuery)
	}
	if d.AutoAssign != "" {
		c.oneOf(dk+".auto_assign", d.AutoAssign, "hash")
	}
}

// validateRanges checks each [from, to) bound parses and is non-empty, and
// that the ranges are listed in ascending order without overlaps or (unless
// a default shard catches the rest) gaps.
func (c *checker) validateRanges(cfg *Config, key string, t *ShardedTable) {
	type bound struct{ from, to *Key }
	bounds := make([]bound, len(t.Ranges))
	ok := true
	for i, r := range t.Ranges {
		rk := idx(key+".ranges", i)
		c.shardRef(cfg, rk+".shard", r.Shard, true)
		var b bound
		b.from, ok = c.parseBound(rk+".from", t.Type, r.From, ok)
		b.to, ok = c.parseBound(rk+".to", t.Type, r.To, ok)
		if b.from != nil && b.to != nil && b.from.Compare(*b.to) >= 0 {
			c.errf(rk, "empty range: from %q must be below to %q (ranges are [from, to))", *r.From, *r.To)
			ok = false
		}
		bounds[i] = b
	}
	if !ok {
		return
	}
	for i := 1; i < len(bounds); i++ {
		prev, cur := bounds[i-1], bounds[i]
		rk := idx(key+".ranges", i)
		switch {
		case cur.from == nil:
			c.errf(rk+".from", "only the first range may omit from (it would overlap ranges[%d])", i-1)
		case prev.to == nil:
			c.errf(rk, "overlaps ranges[%d], which has no upper bound (to)", i-1)
		case prev.from != nil && cur.from.Compare(*prev.from) < 0:
			c.errf(rk+".from", "ranges must be listed in ascending order: %q starts below ranges[%d]", cur.from, i-1)
		case cur.from.Compare(*prev.to) < 0:
			c.errf(rk+".from", "overlaps ranges[%d], which ends at %q", i-1, prev.to)
		case cur.from.Compare(*prev.to) > 0 && t.Default == "":
			c.errf(rk+".from", "gap: keys from %q up to %q match no range; close the gap or set default", prev.to, cur.from)
		}
	}
}

// parseBound parses an optional bound; ok turns false on failure.
func (c *checker) parseBound(key, typ string, s *string, ok bool) (*Key, bool) {
	if s == nil {
		return nil, ok
	}
	k, err := ParseKey(typ, *s)
	if err != nil {
		c.errf(key, "invalid %s bound %q: %v", typ, *s, err)
		return nil, false
	}
	return &k, ok
}

func (c *checker) validateLists(cfg *Config, key string, t *ShardedTable) {
	seen := map[string]string{} // canonical value → key path of its first listing
	for i, l := range t.Lists {
		lk := idx(key+".lists", i)
		c.shardRef(cfg, lk+".shard", l.Shard, true)
		if len(l.Values) == 0 {
			c.errf(lk+".values", "at least one value is required")
		}
		for j, v := range l.Values {
			vk := idx(lk+".values", j)
			k, err := ParseKey(t.Type, v)
			if err != nil {
				c.errf(vk, "invalid %s value %q: %v", t.Type, v, err)
				continue
			}
			if prev, dup := seen[k.String()]; dup {
				c.errf(vk, "value %q is listed twice (first at %s)", v, c.where(prev))
				continue
			}
			seen[k.String()] = vk
		}
	}
}

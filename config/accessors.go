package config

import "strings"

// AdminDatabase is the database name clients use to reach the admin console.
const AdminDatabase = "pgrouter"

// User returns the user with that name, or nil.
func (c *Config) User(name string) *User {
	for i := range c.Users {
		if c.Users[i].Name == name {
			return &c.Users[i]
		}
	}
	return nil
}

// Database returns the logical database with that name, or nil.
func (c *Config) Database(name string) *Database {
	for i := range c.Databases {
		if c.Databases[i].Name == name {
			return &c.Databases[i]
		}
	}
	return nil
}

// ShardIndex returns the position of the named shard (its hash remainder),
// or -1 if there is none.
func (c *Config) ShardIndex(name string) int {
	for i := range c.Shards {
		if c.Shards[i].Name == name {
			return i
		}
	}
	return -1
}

// ShardNames lists the shard names in order.
func (c *Config) ShardNames() []string {
	out := make([]string, len(c.Shards))
	for i := range c.Shards {
		out[i] = c.Shards[i].Name
	}
	return out
}

// PoolSize is the backend pool size for the user's pools: its pool_size
// when set, else pool.size.
func (c *Config) PoolSize(u *User) int {
	if u != nil && u.PoolSize > 0 {
		return u.PoolSize
	}
	return c.Pool.Size
}

// ShardHints reports whether clients may choose shards (the default).
func (r *Routing) ShardHints() bool { return r.AllowShardHints == nil || *r.AllowShardHints }

// RYW reports whether read-your-writes is on (the default).
func (r *Replicas) RYW() bool { return r.ReadYourWrites == nil || *r.ReadYourWrites }

// BackendUser is the role pgrouter logs in as on the shards.
func (u *User) BackendUser() string {
	if u.ServerUser != "" {
		return u.ServerUser
	}
	return u.Name
}

// BackendPassword is the password pgrouter uses on the shards.
func (u *User) BackendPassword() string {
	if u.ServerPassword != "" {
		return u.ServerPassword
	}
	return u.Password
}

// IsSCRAMVerifier reports whether s is a stored SCRAM-SHA-256 verifier
// ("SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>", as in
// pg_authid) rather than a plain password.
func IsSCRAMVerifier(s string) bool {
	rest, ok := strings.CutPrefix(s, "SCRAM-SHA-256$")
	if !ok {
		return false
	}
	params, keys, ok := strings.Cut(rest, "$")
	return ok && strings.Contains(params, ":") && strings.Contains(keys, ":")
}

// Table returns the sharded table with that name (case-insensitive, as
// written in the config), or nil.
func (d *Database) Table(name string) *ShardedTable {
	for i := range d.ShardedTables {
		if strings.EqualFold(d.ShardedTables[i].Table, name) {
			return &d.ShardedTables[i]
		}
	}
	return nil
}

// IsReferenceTable reports whether the table is listed in reference_tables.
func (d *Database) IsReferenceTable(name string) bool {
	for _, t := range d.ReferenceTables {
		if strings.EqualFold(t, name) {
			return true
		}
	}
	return false
}

// Unlisted splits unlisted_tables into its mode ("error", "reference" or
// "shard") and, for "shard", the shard name.
func (d *Database) Unlisted() (mode, shard string) {
	if name, ok := strings.CutPrefix(d.UnlistedTables, "shard:"); ok {
		return "shard", name
	}
	return d.UnlistedTables, ""
}

// NodeAddr returns the address of the node called name (a primary or a
// replica of any shard), or "" when there is none.
func (c *Config) NodeAddr(name string) string {
	for _, s := range c.Shards {
		if s.Primary.Name == name {
			return s.Primary.Addr
		}
		for _, r := range s.Replicas {
			if r.Name == name {
				return r.Addr
			}
		}
	}
	return ""
}

// DirectoryUser is the user whose server credentials connect to a
// directory node: d.User, or the first configured user.
func (c *Config) DirectoryUser(d *Directory) *User {
	if d != nil && d.User != "" {
		return c.User(d.User)
	}
	if len(c.Users) == 0 {
		return nil
	}
	return &c.Users[0]
}

// BackendTLSFor is the backend TLS setting of shard: backend_tls with the
// keys the shard's tls sets taken from there.
func (c *Config) BackendTLSFor(shard string) BackendTLS {
	out := c.BackendTLS
	for i := range c.Shards {
		if t := c.Shards[i].TLS; c.Shards[i].Name == shard && t != nil {
			if t.SSLMode != "" {
				out.SSLMode = t.SSLMode
			}
			if t.CAFile != "" {
				out.CAFile = t.CAFile
			}
			if t.AllowCleartextPassword != nil {
				out.AllowCleartextPassword = t.AllowCleartextPassword
			}
		}
	}
	if out.SSLMode == "" {
		out.SSLMode = "disable"
	}
	return out
}

// CleartextAllowed reports whether a server may ask for the password in
// clear text (default false).
func (t BackendTLS) CleartextAllowed() bool {
	return t.AllowCleartextPassword != nil && *t.AllowCleartextPassword
}

package localpg

import (
	"fmt"
	"strings"
)

// ConfigOptions describe a pgrouter config file for this cluster.
type ConfigOptions struct {
	Listen        string // default 127.0.0.1:6432
	MetricsListen string // default "off"
	Users         []ConfigUser
	Database      string // client-facing name, default "app"
	Dbname        string // name on the shards, default Database
	// Raw YAML bodies (already indented for their section) for sections the
	// caller wants to set: "tls", "pool", "replicas", "health", "limits", "backend_tls", "log", and "db" (extra
	// keys of the database entry, indented by 4 spaces).
	Sections map[string]string
	// Hash[i], when set, is shard i's hash slots as a YAML flow value
	// ("[{modulus: 2, remainder: 0}]", "[]" for a spare).
	Hash []string
}

// ConfigUser is one login in the generated config.
type ConfigUser struct {
	Name, Password, Auth       string
	ServerUser, ServerPassword string
	Admin                      bool
	Extra                      string // more keys of the user entry, raw YAML indented by 4 spaces
}

// ConfigYAML renders a pgrouter config whose shards are this cluster's.
func (c *Cluster) ConfigYAML(o ConfigOptions) string {
	if o.Listen == "" {
		o.Listen = "127.0.0.1:6432"
	}
	if o.MetricsListen == "" {
		o.MetricsListen = "off"
	}
	if o.Database == "" {
		o.Database = "app"
	}
	if o.Dbname == "" {
		o.Dbname = o.Database
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# generated for the local cluster in %s\nlisten: %s\nmetrics:\n  listen: %s\n", c.Dir, o.Listen, o.MetricsListen)
	for _, sec := range []string{"log", "tls", "pool", "replicas", "health", "limits", "backend_tls", "routing", "timeouts"} {
		if body := o.Sections[sec]; body != "" {
			fmt.Fprintf(&b, "%s:\n%s\n", sec, strings.TrimRight(body, "\n"))
		}
	}
	b.WriteString("users:\n")
	for _, u := range o.Users {
		fmt.Fprintf(&b, "  - name: %s\n    password: %q\n", u.Name, u.Password)
		if u.Auth != "" {
			fmt.Fprintf(&b, "    auth: %s\n", u.Auth)
		}
		if u.ServerUser != "" {
			fmt.Fprintf(&b, "    server_user: %s\n    server_password: %q\n", u.ServerUser, u.ServerPassword)
		}
		if u.Admin {
			b.WriteString("    admin: true\n")
		}
		if u.Extra != "" {
			b.WriteString(strings.TrimRight(u.Extra, "\n") + "\n")
		}
	}
	b.WriteString("shards:\n")
	for i, s := range c.Shards {
		fmt.Fprintf(&b, "  - name: %s\n    primary: {name: %s, addr: %q}\n", s.Name, s.Primary.Name, s.Primary.Addr())
		if i < len(o.Hash) && o.Hash[i] != "" {
			fmt.Fprintf(&b, "    hash: %s\n", o.Hash[i])
		}
		if len(s.Replicas) > 0 {
			b.WriteString("    replicas:\n")
			for _, r := range s.Replicas {
				fmt.Fprintf(&b, "      - {name: %s, addr: %q}\n", r.Name, r.Addr())
			}
		}
	}
	fmt.Fprintf(&b, "databases:\n  - name: %s\n    dbname: %s\n", o.Database, o.Dbname)
	if body := o.Sections["db"]; body != "" {
		b.WriteString(strings.TrimRight(body, "\n") + "\n")
	}
	return b.String()
}

package proxy

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/pgrouter/pgrouter/pgwire"

	"github.com/pgrouter/pgrouter/config"
	"github.com/pgrouter/pgrouter/topology"
)

// adminReload re-reads the config file; "RELOAD FORCE" also accepts changes
// that move data (shard list, sharded tables). On error the running config
// stays and the client gets every problem with its file:line.
func (ss *session) adminReload(arg string) error {
	force := strings.EqualFold(arg, "force")
	if arg != "" && !force {
		return pgwire.Error(pgwire.SyntaxError, fmt.Sprintf("RELOAD takes no argument but FORCE, got %q", arg), "")
	}
	if f := ss.srv.fleetOf(); f != nil {
		return ss.reloadFleetMember(f)
	}
	path := ss.srv.Config().Path
	if err := ss.srv.Reload(path, force, "admin", "client_id", ss.pid); err != nil {
		hint := "fix the file and RELOAD again; the running config is unchanged"
		var ce config.Errors
		var one *config.Error
		if !errors.As(err, &ce) && !errors.As(err, &one) {
			hint = "the running config is unchanged; RELOAD FORCE applies changes that move data between shards"
		}
		return pgwire.Error("F0000", "reload failed: "+err.Error(), hint)
	}
	ss.adminTag("RELOAD")
	return nil
}

// adminPause holds new transactions of db ("" = all) and waits for running
// ones to finish, at most pool.shutdown_timeout; past that it still pauses
// and says with a NOTICE how many are running.
func (ss *session) adminPause(db string) error {
	if err := ss.adminCheckDB(db); err != nil {
		return err
	}
	timeout := ss.adminTimeout()
	if busy := ss.srv.pause.pause(db, ss.srv, timeout); busy > 0 {
		ss.adminNotice(fmt.Sprintf("paused, but %d client(s) still hold a backend after %s; their transactions finish on their own", busy, timeout))
	}
	ss.srv.log.Info("paused from the admin console", "client_id", ss.pid, "db", db)
	ss.adminTag("PAUSE")
	return nil
}

func (ss *session) adminResume(db string) error {
	if err := ss.adminCheckDB(db); err != nil {
		return err
	}
	ss.srv.pause.resume(db)
	ss.srv.log.Info("resumed from the admin console", "client_id", ss.pid, "db", db)
	ss.adminTag("RESUME")
	return nil
}

// adminCheckDB refuses a database name the config does not have ("" = all).
func (ss *session) adminCheckDB(db string) error {
	if db == "" {
		return nil
	}
	for _, d := range ss.srv.Config().Databases {
		if d.Name == db {
			return nil
		}
	}
	return pgwire.Error(pgwire.InvalidCatalogName, fmt.Sprintf("no database %q in the config", db), "SHOW POOLS lists the databases")
}

// adminShutdown answers, then shuts the server down gracefully in the
// background: running transactions get pool.shutdown_timeout to finish.
func (ss *session) adminShutdown() {
	ss.srv.log.Info("shutdown requested from the admin console", "client_id", ss.pid)
	ss.adminTag("SHUTDOWN")
	timeout := ss.adminTimeout()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		ss.srv.Shutdown(ctx)
	}()
}

func (ss *session) adminTimeout() time.Duration { return adminTimeoutOf(ss.srv) }

// adminTimeoutOf is pool.shutdown_timeout (30s when unset).
func adminTimeoutOf(s *Server) time.Duration {
	if d := s.Config().Pool.ShutdownTimeout.D(); d > 0 {
		return d
	}
	return 30 * time.Second
}

// adminBan takes a node out of rotation for secs seconds (default one
// hour), or puts it back.
func (ss *session) adminBan(verb, node, secs string) error {
	if node == "" {
		return pgwire.Error(pgwire.SyntaxError, verb+" needs a node name", "SHOW NODES lists them")
	}
	topo := ss.srv.Topology()
	if verb == "UNBAN" {
		if secs != "" {
			return pgwire.Error(pgwire.SyntaxError, "UNBAN takes one node name", "")
		}
		if err := topo.Unban(node); err != nil {
			return pgwire.Error(pgwire.UndefinedObject, err.Error(), "SHOW NODES lists the nodes")
		}
		ss.srv.log.Info("node unbanned from the admin console", "client_id", ss.pid, "shard", shardOf(topo, node), "node", node)
		ss.adminTag("UNBAN")
		return nil
	}
	d := time.Hour
	if secs != "" {
		n, err := strconv.Atoi(secs)
		if err != nil || n <= 0 {
			return pgwire.Error(pgwire.InvalidParameterValue, fmt.Sprintf("invalid ban duration %q (seconds)", secs), "BAN node [seconds], seconds > 0")
		}
		d = time.Duration(n) * time.Second
	}
	if err := topo.Ban(node, d); err != nil {
		return pgwire.Error(pgwire.UndefinedObject, err.Error(), "SHOW NODES lists the nodes")
	}
	ss.srv.log.Info("node banned from the admin console", "client_id", ss.pid, "shard", shardOf(topo, node), "node", node, "ban", d.String())
	ss.adminTag("BAN")
	return nil
}

// shardOf names the shard of node for a log line ("" if it just vanished).
func shardOf(topo *topology.Topology, node string) string {
	if n := topo.Snapshot().Node(node); n != nil {
		return n.Shard
	}
	return ""
}

package proxy

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/pgrouter/pgrouter/pgwire"
	"github.com/pgrouter/pgrouter/reshard"
	"github.com/pgrouter/pgrouter/router/sharding"
)

// reshardHost gives the engine the server's config, cutover and marks.
type reshardHost struct{ *Server }

func (h reshardHost) MarkCopies(moves []sharding.Move)  { h.mark(moves, true, true) }
func (h reshardHost) Unmark(moves []sharding.Move)      { h.mark(moves, true, false) }
func (h reshardHost) MarkCleanup(moves []sharding.Move) { h.mark(moves, false, true) }
func (h reshardHost) CleanupDone(moves []sharding.Move) { h.mark(moves, false, false) }

func (h reshardHost) ShardOfKey(db, table, key string) (string, error) {
	r := h.state.Load().routers[db]
	if r == nil {
		return "", fmt.Errorf("no database %q", db)
	}
	i, err := r.ShardOfKey(table, []byte(key))
	if err != nil {
		return "", err
	}
	return h.Config().Shards[i].Name, nil
}

// Reshard is the resharding engine running inside this server.
func (s *Server) Reshard() *reshard.Engine { return s.reshard }

// adminReshard runs RESHARD TO 'file' | RESUME | ABORT. The engine works in
// the background; SHOW RESHARD follows it.
func (ss *session) adminReshard(cmd string) error {
	if ss.srv.fleetOf() != nil {
		return pgwire.Error(pgwire.FeatureNotSupported, "RESHARD is not supported in a fleet", "reshard with a single pgrouter serving a config file")
	}
	rest := strings.TrimSpace(cmd[len("RESHARD"):])
	verb, arg, _ := strings.Cut(rest, " ")
	e := ss.srv.reshard
	var err error
	switch strings.ToUpper(verb) {
	case "TO":
		path, perr := unquote(strings.TrimSpace(arg))
		if perr != nil {
			return perr
		}
		err = e.Start(path)
	case "DIRECTORY":
		db, table, to, keys, perr := ss.reshardDirectoryArgs(arg)
		if perr != nil {
			return perr
		}
		err = e.StartDirectory(db, table, to, keys)
	case "RESUME":
		err = e.Resume()
	case "ABORT":
		err = e.Abort(context.Background())
	default:
		return pgwire.Error(pgwire.SyntaxError, fmt.Sprintf("unknown RESHARD command %q", cmd), reshardUsage)
	}
	if err != nil {
		return pgwire.Error(pgwire.ObjectNotInPrerequisiteState, "reshard: "+err.Error(), "SHOW RESHARD shows the reshard's phase and last error")
	}
	ss.srv.log.Info("reshard command from the admin console", "client_id", ss.pid, "command", strings.ToUpper(verb))
	ss.adminTag("RESHARD")
	return nil
}

const reshardUsage = "RESHARD TO 'file', RESHARD DIRECTORY table TO shard KEYS k1,k2,…, RESHARD RESUME, RESHARD ABORT, SHOW RESHARD"

// reshardDirectoryArgs parses "table TO shard KEYS k1,k2,…" (the table in
// the first database that has it).
func (ss *session) reshardDirectoryArgs(arg string) (db, table, to string, keys []string, err error) {
	f := strings.Fields(arg)
	if len(f) != 5 || !strings.EqualFold(f[1], "TO") || !strings.EqualFold(f[3], "KEYS") {
		return "", "", "", nil, pgwire.Error(pgwire.SyntaxError, "RESHARD DIRECTORY needs: table TO shard KEYS k1,k2,…", reshardUsage)
	}
	for _, d := range ss.srv.Config().Databases {
		if d.Table(f[0]) != nil {
			db = d.Name
			break
		}
	}
	if db == "" {
		return "", "", "", nil, pgwire.Error(pgwire.UndefinedTable, fmt.Sprintf("no sharded table %q in the config", f[0]), "")
	}
	return db, f[0], f[2], strings.Split(f[4], ","), nil
}

// unquote reads a single-quoted SQL string literal.
func unquote(s string) (string, error) {
	if len(s) < 2 || s[0] != '\'' || s[len(s)-1] != '\'' {
		return "", pgwire.Error(pgwire.SyntaxError, "RESHARD TO needs the next config file as a quoted string", "RESHARD TO '/etc/pgrouter/next.yaml'")
	}
	return strings.ReplaceAll(s[1:len(s)-1], "''", "'"), nil
}

// showReshard answers SHOW RESHARD: one row for the current or last reshard
// (none when there was none).
func (ss *session) showReshard() {
	st := ss.srv.reshard.Status()
	var rows [][]string
	if st.Phase != "" {
		rows = append(rows, []string{st.ID, st.Phase, strconv.FormatBool(st.Running), st.Table,
			fmt.Sprintf("%d/%d", st.ChunksDone, st.Chunks), strconv.FormatInt(st.RowsCopied, 10), strconv.FormatInt(st.LagBytes, 10),
			strconv.FormatFloat(st.HeldSeconds, 'f', 3, 64), st.Error})
	}
	ss.adminTable([]string{"id", "phase", "running", "table", "chunks", "rows_copied", "lag_bytes", "held_seconds", "error"}, rows)
}

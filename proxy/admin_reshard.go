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
	case "RESUME":
		err = e.Resume()
	case "ABORT":
		err = e.Abort(context.Background())
	default:
		return pgwire.Error(pgwire.SyntaxError, fmt.Sprintf("unknown RESHARD command %q", cmd), "RESHARD TO 'file', RESHARD RESUME, RESHARD ABORT, SHOW RESHARD")
	}
	if err != nil {
		return pgwire.Error(pgwire.ObjectNotInPrerequisiteState, "reshard: "+err.Error(), "SHOW RESHARD shows the reshard's phase and last error")
	}
	ss.srv.log.Info("reshard command from the admin console", "client_id", ss.pid, "command", strings.ToUpper(verb))
	ss.adminTag("RESHARD")
	return nil
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

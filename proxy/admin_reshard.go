package proxy

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/pgrouter/pgrouter/config"
	"github.com/pgrouter/pgrouter/pgwire"
	"github.com/pgrouter/pgrouter/reshard"
	"github.com/pgrouter/pgrouter/router/sharding"
)

// reshardHost gives the engine the server's config, cutover and marks; on
// a fleet member it hands them to the fleet, which applies them on every
// member (package fleet, reshard*.go).
type reshardHost struct{ *Server }

// reshardRef is the reshard the engine announced (Host.Begin).
type reshardRef struct {
	id   string
	next []byte
}

func (h reshardHost) Begin(id string, next []byte) bool {
	h.reshardOn.Store(&reshardRef{id: id, next: next})
	return h.fleetOf() != nil
}

// The phases of a reshard as the fleet records them (fleet.Reshard.Phase).
const (
	fleetPhaseCopy    = "copy"
	fleetPhaseCleanup = "cleanup"
	fleetPhaseDone    = "done"
	fleetPhaseAborted = "aborted"
)

// fleetPhase records the reshard's phase in the fleet; placing marks
// (confirm) waits until every live member has them, lifting them does not
// (a member that misses it lifts them at its next look at etcd).
func (h reshardHost) fleetPhase(f Fleet, moves []sharding.Move, phase string, confirm bool) error {
	r := h.reshardOn.Load()
	if r == nil {
		return fmt.Errorf("reshard: no reshard announced to the fleet")
	}
	return f.ReshardPhase(context.Background(), r.id, r.next, moves, phase, confirm)
}

// setMarks is every change of the engine's marks: in a fleet through the
// reshard's record and the barrier (phase; confirm: every member must
// acknowledge), on this pgrouter alone otherwise (to: the targets' mark,
// their copies, else the sources', their leftovers; on: set, else lifted).
func (h reshardHost) setMarks(moves []sharding.Move, phase string, confirm, to, on bool) error {
	if f := h.fleetOf(); f != nil {
		return h.fleetPhase(f, moves, phase, confirm)
	}
	h.mark(moves, to, on)
	return nil
}

func (h reshardHost) MarkCopies(moves []sharding.Move) error {
	return h.setMarks(moves, fleetPhaseCopy, true, true, true)
}

func (h reshardHost) Unmark(moves []sharding.Move) error {
	return h.setMarks(moves, fleetPhaseAborted, false, true, false)
}

func (h reshardHost) MarkCleanup(moves []sharding.Move) error {
	return h.setMarks(moves, fleetPhaseCleanup, true, false, true)
}

func (h reshardHost) CleanupDone(moves []sharding.Move) error {
	return h.setMarks(moves, fleetPhaseDone, false, false, false)
}

// Cutover is Server.Cutover on a pgrouter alone, the fleet's two-step
// cutover over every member in a fleet.
func (h reshardHost) Cutover(ctx context.Context, next *config.Config, moves []sharding.Move,
	drained, undo func(context.Context) error) (time.Duration, error) {
	f := h.fleetOf()
	if f == nil {
		return h.Server.Cutover(ctx, next, moves, drained)
	}
	r := h.reshardOn.Load()
	if r == nil {
		return 0, fmt.Errorf("cutover: no reshard announced to the fleet")
	}
	held, switched, err := f.ReshardCutover(ctx, r.id, drained, undo)
	if err != nil && switched {
		err = fmt.Errorf("%w: %w", reshard.ErrSwitched, err)
	}
	return held, err
}

func (h reshardHost) ConfigText() ([]byte, error) {
	if f := h.fleetOf(); f != nil {
		return f.RunningYAML(), nil
	}
	return os.ReadFile(h.Config().Path)
}

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
	rest := strings.TrimSpace(cmd[len("RESHARD"):])
	verb, arg, _ := strings.Cut(rest, " ")
	if f := ss.srv.fleetOf(); f != nil && (strings.EqualFold(verb, "TO") || strings.EqualFold(verb, "DIRECTORY")) {
		if err := ss.srv.fleetReshardFree(f); err != nil {
			return err
		}
	}
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
		hint := "SHOW RESHARD shows the reshard's phase and last error"
		if f := ss.srv.fleetOf(); f != nil && e.Status().Phase == "" {
			if id, _, by, ok, _ := fleetReshardStatus(f); ok {
				hint = fmt.Sprintf("the fleet's reshard %s runs on member %s: send RESHARD RESUME or ABORT there", id, by)
			}
		}
		return pgwire.Error(pgwire.ObjectNotInPrerequisiteState, "reshard: "+err.Error(), hint)
	}
	ss.srv.log.Info("reshard command from the admin console", "client_id", ss.pid, "command", strings.ToUpper(verb))
	ss.adminTag("RESHARD")
	return nil
}

// fleetReshardFree refuses a new reshard while the fleet records an
// unfinished one run by another member: one reshard at a time.
func (s *Server) fleetReshardFree(f Fleet) error {
	id, phase, by, ok, err := fleetReshardStatus(f)
	if err != nil {
		return pgwire.Error(pgwire.ObjectNotInPrerequisiteState, "reshard: "+err.Error(), "a fleet reshards only with etcd reachable")
	}
	if ok && phase != fleetPhaseDone && phase != fleetPhaseAborted && id != s.reshard.Status().ID {
		return pgwire.Error(pgwire.ObjectNotInPrerequisiteState,
			fmt.Sprintf("reshard %s is unfinished (phase %s) on fleet member %s: a fleet runs one reshard at a time", id, phase, by),
			"SHOW RESHARD on "+by+" shows it; RESHARD RESUME or RESHARD ABORT it there first")
	}
	return nil
}

// fleetReshardStatus is Fleet.ReshardStatus bounded for a console command.
func fleetReshardStatus(f Fleet) (id, phase, by string, ok bool, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return f.ReshardStatus(ctx)
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
func (ss *session) showReshard() error {
	st := ss.srv.reshard.Status()
	var rows [][]string
	if f := ss.srv.fleetOf(); f != nil && st.Phase == "" {
		// This member runs no reshard: the fleet's newest, as recorded in etcd.
		id, phase, by, ok, err := fleetReshardStatus(f)
		if err != nil {
			return pgwire.Error(pgwire.ObjectNotInPrerequisiteState, "SHOW RESHARD: "+err.Error(), "etcd holds the fleet's reshards; the member running one shows it without etcd")
		}
		if ok {
			rows = append(rows, []string{id, phase, "false", "", "", "", "", "",
				"runs on fleet member " + by + " (SHOW RESHARD there for its progress)"})
		}
	} else if st.Phase != "" {
		rows = append(rows, []string{st.ID, st.Phase, strconv.FormatBool(st.Running), st.Table,
			fmt.Sprintf("%d/%d", st.ChunksDone, st.Chunks), strconv.FormatInt(st.RowsCopied, 10), strconv.FormatInt(st.LagBytes, 10),
			strconv.FormatFloat(st.HeldSeconds, 'f', 3, 64), st.Error})
	}
	ss.adminTable([]string{"id", "phase", "running", "table", "chunks", "rows_copied", "lag_bytes", "held_seconds", "error"}, rows)
	return nil
}

package proxy

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/pgrouter/pgrouter/pgwire"

	"github.com/pgrouter/pgrouter/config"
)

// adminFleet runs FLEET PAUSE [db] | FLEET RESUME [db] | FLEET RELOAD on
// every live member of the fleet, through the barrier in etcd: it answers
// only when every member acknowledged, or fails naming those that did not.
func (ss *session) adminFleet(verb, arg string) error {
	f := ss.srv.fleetOf()
	if f == nil {
		return pgwire.Error(pgwire.ObjectNotInPrerequisiteState, "this pgrouter is not in a fleet", "start it with serve --config etcd://host:2379/prefix")
	}
	verb = strings.ToUpper(verb)
	switch verb {
	case "PAUSE", "RESUME":
		if err := ss.adminCheckDB(arg); err != nil {
			return err
		}
	case "RELOAD":
		if arg != "" {
			return pgwire.Error(pgwire.SyntaxError, "FLEET RELOAD takes no argument", "")
		}
	default:
		return pgwire.Error(pgwire.SyntaxError, fmt.Sprintf("unknown fleet operation %q", verb), "FLEET PAUSE [db], FLEET RESUME [db], FLEET RELOAD")
	}
	ss.srv.log.Info("fleet operation from the admin console", "client_id", ss.pid, "op", verb, "db", arg)
	if err := f.Run(context.Background(), verb, arg); err != nil {
		return pgwire.Error(pgwire.ObjectNotInPrerequisiteState, err.Error(), "SHOW FLEET lists the live members; the operation is refused while etcd is unreachable")
	}
	ss.adminTag("FLEET " + verb)
	return nil
}

// showFleet lists the live members (SHOW FLEET).
func (ss *session) showFleet() error {
	f := ss.srv.fleetOf()
	if f == nil {
		return pgwire.Error(pgwire.ObjectNotInPrerequisiteState, "this pgrouter is not in a fleet", "start it with serve --config etcd://host:2379/prefix")
	}
	cols, rows, err := f.Table(context.Background())
	if err != nil {
		return pgwire.Error(pgwire.ConnectionFailure, err.Error(), fmt.Sprintf("this member keeps serving config version %d", f.Version()))
	}
	ss.adminTable(cols, rows)
	return nil
}

// versionLine is SHOW VERSION's text: the build, and in a fleet the config
// version this member runs.
func (s *Server) versionLine() string {
	if f := s.fleetOf(); f != nil {
		return fmt.Sprintf("%s; config version %d from %s", s.Version(), f.Version(), f.URL())
	}
	return s.Version()
}

// reloadFleetMember re-applies the newest published version (RELOAD on a
// fleet member: its config lives in etcd, not in a file).
func (ss *session) reloadFleetMember(f Fleet) error {
	if err := f.ReloadLocal(context.Background()); err != nil {
		hint := "the running config is unchanged"
		var ce config.Errors
		if errors.As(err, &ce) {
			hint = "fix the file, push it again; the running config is unchanged"
		}
		return pgwire.Error("F0000", "reload failed: "+err.Error(), hint)
	}
	ss.adminTag("RELOAD")
	return nil
}

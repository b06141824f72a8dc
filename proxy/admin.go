package proxy

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// runAdmin serves the admin console (database "pgrouter"): simple-protocol
// commands in PgBouncer's style, answered from the live state.
func (ss *session) runAdmin() {
	for {
		typ, body, err := ss.rd.next()
		if err != nil || typ == 'X' {
			return
		}
		switch typ {
		case 'Q':
			if err := ss.adminCommand(strings.TrimSpace(strings.TrimRight(strings.TrimSpace(sqlString(body)), ";"))); err != nil {
				return
			}
		case 'S':
			ss.out = appendError(ss.out, pgErr("0A000", "the admin console speaks the simple query protocol only", "use psql, or QueryExecModeSimpleProtocol"))
			ss.out = appendReady(ss.out, 'I')
			if ss.flushClient() != nil {
				return
			}
		case 'P', 'B', 'D', 'E', 'C', 'H':
			// skipped until Sync, which answers with the error above
		default:
			ss.writeClient(appendError(nil, &pgconn.PgError{Severity: "FATAL", Code: "08P01", Message: "invalid message on the admin console"}))
			return
		}
	}
}

const adminHelp = "SHOW POOLS|CLIENTS|SERVERS|STATS|SHARDS|NODES|CONFIG|VERSION, RELOAD, PAUSE [db], RESUME [db], BAN node [seconds], UNBAN node, SHUTDOWN"

// adminCommand runs one console command and answers it.
func (ss *session) adminCommand(cmd string) error {
	f := strings.Fields(cmd)
	if len(f) == 0 {
		ss.out = append(ss.out, 'I', 0, 0, 0, 4)
		ss.out = appendReady(ss.out, 'I')
		return ss.flushClient()
	}
	verb := strings.ToUpper(f[0])
	arg := func(i int) string {
		if i < len(f) {
			return f[i]
		}
		return ""
	}
	var err error
	switch verb {
	case "SHOW":
		err = ss.adminShow(strings.ToUpper(arg(1)))
	case "RELOAD":
		if err = ss.srv.ReloadFile(ss.srv.Config().Path, strings.EqualFold(arg(1), "force")); err == nil {
			ss.srv.log.Info("config reloaded from the admin console", "client_id", ss.pid, "file", ss.srv.Config().Path)
			ss.adminTag("RELOAD")
		}
	case "PAUSE":
		err = ss.srv.pause.pause(arg(1), ss.srv, ss.adminTimeout())
		if err == nil {
			ss.adminTag("PAUSE")
		}
	case "RESUME":
		ss.srv.pause.resume(arg(1))
		ss.adminTag("RESUME")
	case "BAN", "UNBAN":
		err = ss.adminBan(verb, arg(1), arg(2))
	case "SHUTDOWN":
		ss.adminTag("SHUTDOWN")
		ss.flushClient()
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), ss.adminTimeout())
			defer cancel()
			ss.srv.Shutdown(ctx)
		}()
		return errClientGone
	default:
		err = pgErr("42601", fmt.Sprintf("unknown admin command %q", cmd), "commands: "+adminHelp)
	}
	if err != nil {
		ss.out = appendError(ss.out, toPgError(err))
	}
	ss.out = appendReady(ss.out, 'I')
	return ss.flushClient()
}

func (ss *session) adminTimeout() time.Duration {
	if d := ss.srv.Config().Pool.ShutdownTimeout.D(); d > 0 {
		return d
	}
	return 30 * time.Second
}

func (ss *session) adminBan(verb, node, secs string) error {
	if node == "" {
		return pgErr("42601", verb+" needs a node name", "SHOW NODES lists them")
	}
	topo := ss.srv.Topology()
	if verb == "UNBAN" {
		if err := topo.Unban(node); err != nil {
			return pgErr("42704", err.Error(), "SHOW NODES lists the nodes")
		}
		ss.adminTag("UNBAN")
		return nil
	}
	d := time.Hour
	if secs != "" {
		n, err := strconv.Atoi(secs)
		if err != nil || n <= 0 {
			return pgErr("22023", fmt.Sprintf("invalid ban duration %q (seconds)", secs), "")
		}
		d = time.Duration(n) * time.Second
	}
	if err := topo.Ban(node, d); err != nil {
		return pgErr("42704", err.Error(), "SHOW NODES lists the nodes")
	}
	ss.srv.log.Warn("node banned from the admin console", "node", node, "duration_ms", d.Milliseconds(), "client_id", ss.pid)
	ss.adminTag("BAN")
	return nil
}

func (ss *session) adminTag(tag string) {
	ss.out = appendMsg(ss.out, &pgproto3.CommandComplete{CommandTag: []byte(tag)})
}

// adminTable answers a SHOW with text columns.
func (ss *session) adminTable(cols []string, rows [][]string) {
	fields := make([]pgproto3.FieldDescription, len(cols))
	for i, c := range cols {
		fields[i] = pgproto3.FieldDescription{Name: []byte(c), DataTypeOID: 25, DataTypeSize: -1, TypeModifier: -1}
	}
	ss.out = appendMsg(ss.out, &pgproto3.RowDescription{Fields: fields})
	for _, r := range rows {
		vals := make([][]byte, len(r))
		for i, v := range r {
			vals[i] = []byte(v)
		}
		ss.out = appendMsg(ss.out, &pgproto3.DataRow{Values: vals})
	}
	ss.adminTag("SHOW")
}

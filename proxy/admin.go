package proxy

import (
	"fmt"
	"strings"

	"github.com/pgrouter/pgrouter/pgwire"

	"github.com/jackc/pgx/v5/pgproto3"
)

// runAdmin serves the admin console (database "pgrouter"): simple-protocol
// commands in PgBouncer's style, answered from the live state. Commands are
// in admin_cmds.go, SHOW targets in admin_show.go.
func (ss *session) runAdmin() {
	for {
		typ, body, err := ss.rd.next()
		if err != nil || typ == pgwire.Terminate {
			return
		}
		switch typ {
		case pgwire.Query:
			ss.busy.Store(true) // SHOW CLIENTS lists the asking console as active, like pg_stat_activity
			err := ss.adminCommand(adminCommandText(sqlString(body)))
			ss.busy.Store(false)
			if err != nil {
				return
			}
		case pgwire.Sync:
			ss.out = pgwire.AppendError(ss.out, pgwire.Error(pgwire.FeatureNotSupported, "the admin console speaks the simple query protocol only",
				"use psql, or a driver's simple-protocol mode (pgx: QueryExecModeSimpleProtocol)"))
			ss.out = pgwire.AppendReady(ss.out, pgwire.TxIdle)
			if ss.flushClient() != nil {
				return
			}
		case pgwire.Parse, pgwire.Bind, pgwire.Describe, pgwire.Execute, pgwire.Close, pgwire.Flush:
			// skipped until Sync, which answers with the error above
		default:
			ss.writeClient(pgwire.AppendError(nil, pgwire.Fatal(pgwire.ProtocolViolation, "invalid message on the admin console")))
			return
		}
	}
}

// adminCommandText trims whitespace and one trailing ';' (psql sends it).
func adminCommandText(sql string) string {
	return strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(sql), ";"))
}

const adminHelp = "SHOW POOLS|CLIENTS|SERVERS|STATS|SHARDS|NODES|CONFIG|VERSION|RESHARD|HELP, RELOAD [FORCE], PAUSE [db], RESUME [db], " +
	"BAN node [seconds], UNBAN node, SHUTDOWN, INVALIDATE DIRECTORY [table [key]], SHOW TRANSACTIONS, RECOVER, " +
	"SHOW FLEET, FLEET PAUSE [db], FLEET RESUME [db], FLEET RELOAD, RESHARD TO 'file', RESHARD RESUME, RESHARD ABORT"

// adminCommand runs one console command and answers it, ending with
// ReadyForQuery. A non-nil return means the client connection is done.
func (ss *session) adminCommand(cmd string) error {
	f := strings.Fields(cmd)
	if len(f) == 0 {
		ss.out = append(ss.out, pgwire.EmptyQueryResponse, 0, 0, 0, 4) // EmptyQueryResponse
		ss.out = pgwire.AppendReady(ss.out, pgwire.TxIdle)
		return ss.flushClient()
	}
	arg := func(i int) string {
		if i < len(f) {
			return f[i]
		}
		return ""
	}
	if strings.EqualFold(f[0], "INVALIDATE") { // its key argument may hold spaces
		return ss.adminDone(ss.adminInvalidate(cmd))
	}
	if strings.EqualFold(f[0], "RESHARD") { // its file argument may hold spaces
		return ss.adminDone(ss.adminReshard(cmd))
	}
	if len(f) > 3 {
		return ss.adminDone(pgwire.Error(pgwire.SyntaxError, fmt.Sprintf("too many arguments in admin command %q", cmd), "commands: "+adminHelp))
	}
	var err error
	switch verb := strings.ToUpper(f[0]); verb {
	case "SHOW":
		err = ss.adminShow(strings.ToUpper(arg(1)))
	case "RELOAD":
		err = ss.adminReload(arg(1))
	case "PAUSE":
		err = ss.adminPause(arg(1))
	case "RESUME":
		err = ss.adminResume(arg(1))
	case "BAN", "UNBAN":
		err = ss.adminBan(verb, arg(1), arg(2))
	case "SHUTDOWN":
		ss.adminShutdown()
	case "RECOVER":
		err = ss.adminRecover()
	case "FLEET":
		err = ss.adminFleet(arg(1), arg(2))
	default:
		err = pgwire.Error(pgwire.SyntaxError, fmt.Sprintf("unknown admin command %q", cmd), "commands: "+adminHelp)
	}
	return ss.adminDone(err)
}

// adminDone appends err (if any) and ReadyForQuery, and flushes.
func (ss *session) adminDone(err error) error {
	if err != nil {
		ss.out = pgwire.AppendError(ss.out, toPgError(err))
	}
	ss.out = pgwire.AppendReady(ss.out, pgwire.TxIdle)
	return ss.flushClient()
}

func (ss *session) adminTag(tag string) {
	ss.out = appendMsg(ss.out, &pgproto3.CommandComplete{CommandTag: []byte(tag)})
}

func (ss *session) adminNotice(msg string) {
	ss.out = appendMsg(ss.out, &pgproto3.NoticeResponse{Severity: "NOTICE", SeverityUnlocalized: "NOTICE", Code: pgwire.SuccessfulCompletion, Message: msg})
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

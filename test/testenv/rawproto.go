package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// Raw is a client connection speaking raw protocol messages, for exchanges
// no driver produces (errors before Sync, Flush, a Query inside a batch…).
// pgconn does startup and authentication, then hands over the socket.
type Raw struct {
	Conn   net.Conn
	PID    uint32
	Secret []byte
	Params map[string]string // ParameterStatus at startup
	fe     *pgproto3.Frontend
	dsn    string
}

// DialRaw connects to dsn and takes over the socket.
func DialRaw(ctx context.Context, dsn string) (*Raw, error) {
	pc, err := pgconn.Connect(ctx, dsn)
	if err != nil {
		return nil, err
	}
	hc, err := pc.Hijack()
	if err != nil {
		return nil, err
	}
	return &Raw{Conn: hc.Conn, PID: hc.PID, Secret: hc.SecretKey, Params: hc.ParameterStatuses,
		fe: pgproto3.NewFrontend(hc.Conn, hc.Conn), dsn: dsn}, nil
}

// Close says Terminate and closes the socket.
func (r *Raw) Close() {
	r.fe.Send(&pgproto3.Terminate{})
	r.fe.Flush()
	r.Conn.Close()
}

// Send writes msgs in one write.
func (r *Raw) Send(msgs ...pgproto3.FrontendMessage) error {
	for _, m := range msgs {
		r.fe.Send(m)
	}
	return r.fe.Flush()
}

// errTimeout marks a transcript that stopped waiting: a hang.
var errTimeout = errors.New("TIMEOUT")

// Until reads backend messages until one of kind until arrives (its first
// letter as Describe would print it: "Z", "E", "1", "C", "G"…) and returns
// them as a transcript (see Show). A message not arriving within wait ends
// the transcript with "TIMEOUT".
func (r *Raw) Until(until string, wait time.Duration) []string {
	var out []string
	r.Conn.SetReadDeadline(time.Now().Add(wait))
	defer r.Conn.SetReadDeadline(time.Time{})
	for {
		m, err := r.fe.Receive()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded) {
				return append(out, errTimeout.Error())
			}
			return append(out, "CLOSED: "+err.Error())
		}
		s := Show(m)
		if s == "" {
			continue
		}
		out = append(out, s)
		if strings.HasPrefix(s, until+" ") || s == until {
			return out
		}
	}
}

// Show renders a backend message for comparison with Postgres: what must
// be equal, without what may differ (BackendKeyData, error positions).
// ParameterStatus and notices are left out ("").
func Show(m pgproto3.BackendMessage) string {
	switch m := m.(type) {
	case *pgproto3.ParseComplete:
		return "1"
	case *pgproto3.BindComplete:
		return "2"
	case *pgproto3.CloseComplete:
		return "3"
	case *pgproto3.NoData:
		return "n"
	case *pgproto3.PortalSuspended:
		return "s"
	case *pgproto3.EmptyQueryResponse:
		return "I"
	case *pgproto3.ReadyForQuery:
		return "Z " + string(m.TxStatus)
	case *pgproto3.ErrorResponse:
		return "E " + m.Code + " " + m.Message
	case *pgproto3.CommandComplete:
		return "C " + string(m.CommandTag)
	case *pgproto3.DataRow:
		vals := make([]string, len(m.Values))
		for i, v := range m.Values {
			if v == nil {
				vals[i] = "NULL"
			} else {
				vals[i] = string(v)
			}
		}
		return "D " + strings.Join(vals, "|")
	case *pgproto3.RowDescription:
		names := make([]string, len(m.Fields))
		for i, f := range m.Fields {
			names[i] = fmt.Sprintf("%s:%d", f.Name, f.DataTypeOID)
		}
		return "T " + strings.Join(names, ",")
	case *pgproto3.ParameterDescription:
		return fmt.Sprintf("t %v", m.ParameterOIDs)
	case *pgproto3.CopyInResponse:
		return "G"
	case *pgproto3.CopyOutResponse:
		return "H"
	case *pgproto3.CopyData:
		return "d " + string(m.Data)
	case *pgproto3.CopyDone:
		return "c"
	case *pgproto3.FunctionCallResponse:
		return "V " + string(m.Result)
	case *pgproto3.NotificationResponse:
		return "A " + m.Channel + " " + m.Payload
	case *pgproto3.ParameterStatus, *pgproto3.NoticeResponse:
		return ""
	}
	return fmt.Sprintf("%T", m)
}

// Step is one write of a script and what to read after it (Until's until;
// "" reads nothing).
type Step struct {
	Send  []pgproto3.FrontendMessage
	Until string
}

// RunScript plays steps on r and returns the whole transcript; each step's
// answers are preceded by a "--" line.
func (r *Raw) RunScript(steps []Step, wait time.Duration) []string {
	var out []string
	for _, s := range steps {
		out = append(out, "--")
		if err := r.Send(s.Send...); err != nil {
			return append(out, "SEND: "+err.Error())
		}
		if s.Until != "" {
			got := r.Until(s.Until, wait)
			out = append(out, got...)
			if n := len(got); n > 0 && (got[n-1] == errTimeout.Error() || strings.HasPrefix(got[n-1], "CLOSED")) {
				return out
			}
		}
	}
	return out
}

package proxy

import (
	"bytes"
	"encoding/binary"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/pgrouter/pgrouter/pgwire"

	"github.com/pgrouter/pgrouter/router"
)

// stmtRegistry gives every distinct (query text, parameter types) one
// server-side statement name shared by all clients, so a backend that has
// prepared it for one client can serve it to the next without a re-Parse.
type stmtRegistry struct {
	mu    sync.RWMutex
	names map[string]string
	seq   uint64
	gen   atomic.Uint64 // schema changes seen (retire, retireAll)
}

// generation counts the schema changes seen so far.
func (r *stmtRegistry) generation() uint64 { return r.gen.Load() }

func (r *stmtRegistry) init() { r.names = map[string]string{} }

// name returns the server-side name for key (see stmtKey).
func (r *stmtRegistry) name(key []byte) string {
	r.mu.RLock()
	n, ok := r.names[string(key)]
	r.mu.RUnlock()
	if ok {
		return n
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if n, ok := r.names[string(key)]; ok {
		return n
	}
	r.seq++
	n = "pgr_" + strconv.FormatUint(r.seq, 10)
	r.names[string(key)] = n
	return n
}

// fresh returns a server-side name no text has had: for a statement the
// registry does not keep (see simpleShardStatement).
func (r *stmtRegistry) fresh() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seq++
	return "pgr_" + strconv.FormatUint(r.seq, 10)
}

// retire gives the text named name a new server-side name from now on:
// backends that prepared name keep a plan whose result type the schema no
// longer has (Postgres: 0A000 cached plan must not change result type). A
// client that prepares the text afresh must get a fresh statement, as it
// would from Postgres; clients that prepared it before keep the old name.
func (r *stmtRegistry) retire(name string) {
	r.gen.Add(1)
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, n := range r.names {
		if n == name {
			delete(r.names, k)
			return
		}
	}
}

// retireAll retires every name (a schema change ran through pgrouter).
func (r *stmtRegistry) retireAll() {
	r.gen.Add(1)
	r.mu.Lock()
	clear(r.names)
	r.mu.Unlock()
}

// isStaleResultType reports whether an ErrorResponse body is Postgres's
// "cached plan must not change result type" (by its routine: messages may
// be translated).
func isStaleResultType(body []byte) bool {
	return bytes.Contains(body, []byte("\x00C0A000\x00")) && bytes.Contains(body, []byte("\x00RRevalidateCachedQuery\x00"))
}

// stmtKey builds the registry key: the Parse body without its statement
// name (query text, NUL, parameter type OIDs) and the client's search_path.
// Postgres re-plans a statement used under another search_path than it was
// prepared with, and fails it (0A000 cached plan must not change result
// type) when the tables found there have other columns: clients with a
// schema each (one per tenant) must not share it.
func (ss *session) stmtKey(parseRest []byte) []byte {
	path, ok := ss.desired["search_path"]
	if !ok {
		return parseRest
	}
	return append(append(append([]byte(nil), parseRest...), 0), path...)
}

// stmt is one client-named prepared statement.
type stmt struct {
	server  string // server-side name
	query   string
	oids    []uint32
	plan    *router.Plan
	planErr error  // why the router could not plan it (reported at Bind)
	parse   []byte // Parse body minus the name: query\0 + oid count + oids
	gen     uint64 // registry generation at the client's Parse (resulttype.go)
	desc    []byte // the description the client was given (Describe); empty: NoData; nil: none yet
	params  []byte // with desc: the ParameterDescription the client was given
	stale   bool   // its result type changed since: Bind and Describe fail (0A000)
}

// numParams is how many parameters a Bind of st must supply, as Postgres
// counts them: the types the Parse declared, or more if the text uses more.
func (st *stmt) numParams() int {
	n := len(st.oids)
	if st.plan != nil && !st.plan.Unparsed {
		n = max(n, st.plan.NumParams)
	}
	return n
}

// parseMsg is a decoded Parse message.
type parseMsg struct {
	name  string
	query string
	oids  []uint32
	rest  []byte // body after the name
}

func decodeParse(body []byte) (parseMsg, error) {
	var m parseMsg
	name, rest, err := cstring(body)
	if err != nil {
		return m, err
	}
	m.name, m.rest = name, rest
	q, rest, err := cstring(rest)
	if err != nil {
		return m, err
	}
	m.query = q
	if len(rest) < 2 {
		return m, errMalformed
	}
	n := int(binary.BigEndian.Uint16(rest))
	rest = rest[2:]
	if len(rest) < 4*n {
		return m, errMalformed
	}
	m.oids = make([]uint32, n)
	for i := range m.oids {
		m.oids[i] = binary.BigEndian.Uint32(rest[4*i:])
	}
	return m, nil
}

// appendParse encodes a Parse of a stored statement under its server name.
func appendParse(dst []byte, st *stmt) []byte {
	return appendParseAs(dst, st.server, st)
}

// appendParseAs encodes a Parse of st's text under name.
func appendParseAs(dst []byte, name string, st *stmt) []byte {
	start := len(dst)
	dst = append(dst, pgwire.Parse, 0, 0, 0, 0)
	dst = append(dst, name...)
	dst = append(dst, 0)
	dst = append(dst, st.parse...)
	binary.BigEndian.PutUint32(dst[start+1:], uint32(len(dst)-start-1))
	return dst
}

// appendCloseStmt encodes Close of a server-side statement.
func appendCloseStmt(dst []byte, name string) []byte {
	start := len(dst)
	dst = append(dst, pgwire.Close, 0, 0, 0, 0, pgwire.ObjectStatement)
	dst = append(dst, name...)
	dst = append(dst, 0)
	binary.BigEndian.PutUint32(dst[start+1:], uint32(len(dst)-start-1))
	return dst
}

// appendQuery encodes a simple Query.
func appendQuery(dst []byte, sql string) []byte {
	start := len(dst)
	dst = append(dst, pgwire.Query, 0, 0, 0, 0)
	dst = append(dst, sql...)
	dst = append(dst, 0)
	binary.BigEndian.PutUint32(dst[start+1:], uint32(len(dst)-start-1))
	return dst
}

package router

import (
	"fmt"
	"strings"

	"github.com/pgrouter/pgrouter/pgwire"

	pg "github.com/pganalyze/pg_query_go/v6"

	"github.com/pgrouter/pgrouter/router/sharding"
)

// CopyFormat is the data format of a COPY.
type CopyFormat uint8

const (
	CopyText   CopyFormat = iota // tab-separated, backslash escapes
	CopyCSV                      // comma-separated, "quoted" fields
	CopyBinary                   // PGCOPY header, tuples of length-prefixed fields
)

func (f CopyFormat) String() string {
	switch f {
	case CopyCSV:
		return "csv"
	case CopyBinary:
		return "binary"
	}
	return "text"
}

// CopyPlan describes a lone COPY … FROM STDIN that the proxy executes itself:
// into a sharded table it cuts the client's data into rows and sends each
// row to the shard of its key; into a reference table (reference_writes:
// best_effort) it sends every row to every shard. Each shard runs the
// original statement unchanged, so every option below is what each shard
// applies too; the router only reads them to find row boundaries and keys.
type CopyPlan struct {
	Table     string        // the table as configured ("users", "app.users")
	Column    string        // shard key column; "" for a reference table
	KeyType   sharding.Type // TypeInvalid for a reference table
	KeyIndex  int           // 0-based position of the key in the column list; -1 for a reference table
	Columns   int           // number of columns in the column list (0: none given)
	Reference bool          // every row goes to every shard
	UTF8Data  bool          // an ENCODING option says the data is UTF-8 whatever client_encoding says

	Format    CopyFormat
	Delimiter byte   // text: '\t', CSV: ','
	Null      string // text: `\N`, CSV: ""
	Header    bool   // the first line is a header (also HEADER MATCH); every shard gets it
	Quote     byte   // CSV only
	Escape    byte   // CSV only (defaults to Quote)
	// ForceNull / ForceNotNull: the CSV FORCE_NULL / FORCE_NOT_NULL lists
	// name the key column, which changes how its NULL string reads.
	ForceNull, ForceNotNull bool

	t *shardedTable
}

// Shard returns the shard of one row's key: key is the field after quote
// and escape processing (text/CSV) or the raw field (binary); nil is NULL.
// Errors are *pgconn.PgError and never include the value.
func (c *CopyPlan) Shard(key []byte, binaryFormat bool) (int, error) {
	if c.t == nil {
		return 0, pgError(codeFeatureNotSupported, fmt.Sprintf("COPY into %q has no shard key", c.Table), "")
	}
	return shardOfKey(c.t, key, binaryFormat)
}

// ShardOfKey returns the shard that table's sharding function assigns to a
// key in text form (nil = NULL). table is a configured sharded table name
// (as in CopyPlan.Table; unqualified names match any schema).
func (r *Router) ShardOfKey(table string, key []byte) (int, error) {
	if nr := r.moved(); nr != nil {
		return nr.ShardOfKey(table, key)
	}
	schema, name := splitTableName(table)
	for _, t := range r.tables {
		if t.display == table || (t.name == name && (t.schema == "" || schema == "" || t.schema == schema)) {
			return shardOfKey(t, key, false)
		}
	}
	return 0, pgError(codeUndefinedTable, fmt.Sprintf("table %q is not a sharded table", table), "")
}

func shardOfKey(t *shardedTable, key []byte, binaryFormat bool) (int, error) {
	var k sharding.Key
	var err error
	if binaryFormat {
		k, err = sharding.KeyFromBinary(t.typ, 0, key)
	} else {
		k, err = sharding.KeyFromText(t.typ, key)
	}
	if err != nil {
		return 0, err
	}
	return t.fn.Shard(k)
}

// analyzeCopyFrom plans COPY … FROM (no query) into a sharded table. It
// returns ok=false for other relations, which take the generic path.
func (r *Router) analyzeCopyFrom(s *pg.CopyStmt, nstmts int) (sp *stmtPlan, cp *CopyPlan, ok bool) {
	t := r.shardedTableFor(s.Relation)
	if t == nil {
		return nil, nil, false
	}
	sp = &stmtPlan{onlyShard: -1, updVal: -1, occs: []occ{{t: t}}}
	fail := func(code, hint, format string, args ...any) (*stmtPlan, *CopyPlan, bool) {
		sp.kind, sp.err = spErr, pgError(code, fmt.Sprintf(format, args...), hint)
		return sp, nil, true
	}
	switch {
	case s.Filename != "" || s.IsProgram:
		return fail(codeFeatureNotSupported, `send the data from the client: COPY … FROM STDIN (psql: \copy)`,
			"COPY FROM a server file or program into sharded table %q is not supported", t.display)
	case nstmts > 1:
		return fail(codeFeatureNotSupported, "send the COPY as a query of its own",
			"COPY FROM into sharded table %q must be sent on its own, not in a multi-statement query", t.display)
	case len(s.Attlist) == 0:
		return fail(codeFeatureNotSupported, fmt.Sprintf("list the columns: COPY %s (%s, …) FROM STDIN", t.display, t.column),
			"COPY FROM STDIN into sharded table %q needs a column list: pgrouter must know where shard key %q is in each row", t.display, t.column)
	}
	cp = &CopyPlan{Table: t.display, Column: t.column, KeyType: t.typ, KeyIndex: -1, Columns: len(s.Attlist), t: t}
	for i, a := range s.Attlist {
		if a.GetString_().GetSval() == t.column {
			cp.KeyIndex = i
		}
	}
	if cp.KeyIndex < 0 {
		return fail(codeFeatureNotSupported, fmt.Sprintf("add %s to the column list", t.column),
			"the column list of COPY into sharded table %q does not include shard key %q", t.display, t.column)
	}
	if err := parseCopyOptions(s.Options, cp); err != nil {
		sp.kind, sp.err = spErr, err
		return sp, nil, true
	}
	sp.kind, sp.set, sp.multi, sp.copy = spFixed, r.all, r.all.Len() > 1, true
	sp.table, sp.column = t.display, t.column
	sp.reason = fmt.Sprintf("COPY FROM STDIN: rows split by shard key %s.%s", t.display, t.column)
	return sp, cp, true
}

// referenceCopy is the CopyPlan of COPY … FROM STDIN into a reference table
// written on every shard (the generic analysis already applied the
// reference_writes policy); nil when the proxy need not split anything.
func (r *Router) referenceCopy(s *pg.CopyStmt, sp *stmtPlan, nstmts int) *CopyPlan {
	if sp.kind != spFixed || !sp.multi || s.Filename != "" || s.IsProgram || nstmts > 1 {
		return nil
	}
	if kind, _ := r.relKind(s.Relation); kind != relReference {
		return nil
	}
	cp := &CopyPlan{Table: relName(s.Relation), KeyIndex: -1, Columns: len(s.Attlist), Reference: true}
	if err := parseCopyOptions(s.Options, cp); err != nil {
		sp.kind, sp.err = spErr, err
		return nil
	}
	sp.copy = true
	sp.reason = "COPY FROM STDIN into a reference table: every row to every shard (best effort)"
	return cp
}

// parseCopyOptions reads the options a COPY's data format depends on, with
// Postgres's defaults and checks (options spelled the pre-9.0 way arrive
// here as the same DefElems).
func parseCopyOptions(opts []*pg.Node, cp *CopyPlan) error {
	var delim, null, quote, escape *string
	for _, o := range opts {
		d := o.GetDefElem()
		if d == nil {
			continue
		}
		switch strings.ToLower(d.Defname) {
		case "format":
			switch f := strings.ToLower(defString(d)); f {
			case "text":
				cp.Format = CopyText
			case "csv":
				cp.Format = CopyCSV
			case "binary":
				cp.Format = CopyBinary
			default:
				return pgError(codeInvalidParameter, fmt.Sprintf("COPY format %q not recognized", f), "")
			}
		case "delimiter":
			v := defString(d)
			delim = &v
		case "null":
			v := defString(d)
			null = &v
		case "quote":
			v := defString(d)
			quote = &v
		case "escape":
			v := defString(d)
			escape = &v
		case "header":
			cp.Header = strings.EqualFold(defString(d), "match") || defElemBool(d, true)
		case "force_null":
			cp.ForceNull = namesColumn(d, cp.Column)
		case "force_not_null":
			cp.ForceNotNull = namesColumn(d, cp.Column)
		case "encoding":
			cp.UTF8Data = true // any other encoding is refused below for text keys
			if e := strings.ToLower(strings.ReplaceAll(defString(d), "-", "")); e != "utf8" && e != "unicode" && cp.KeyType == sharding.TypeText {
				return pgError(codeFeatureNotSupported,
					fmt.Sprintf("COPY into sharded table %q with ENCODING %q is not supported: text keys are hashed as UTF-8", cp.Table, defString(d)), "send UTF-8 data")
			}
		case "default", "on_error":
			return pgError(codeFeatureNotSupported,
				fmt.Sprintf("COPY option %s is not supported for tables pgrouter splits or copies to every shard", strings.ToUpper(d.Defname)), "")
		}
	}
	return copyDefaults(cp, delim, null, quote, escape)
}

// copyDefaults fills in the format's defaults and rejects what Postgres
// would reject, so the proxy never scans rows with options it cannot mean.
func copyDefaults(cp *CopyPlan, delim, null, quote, escape *string) error {
	bad := func(msg string) error { return pgError(codeFeatureNotSupported, msg, "") }
	if cp.Format == CopyBinary {
		if delim != nil || null != nil || quote != nil || escape != nil {
			return pgError(pgwire.SyntaxError, "cannot specify DELIMITER, NULL, QUOTE or ESCAPE in BINARY mode", "")
		}
		return nil
	}
	one := func(name string, v *string, dflt byte) (byte, error) {
		if v == nil {
			return dflt, nil
		}
		if len(*v) != 1 {
			return 0, bad(fmt.Sprintf("COPY %s must be a single one-byte character", name))
		}
		return (*v)[0], nil
	}
	var err error
	dDelim, dNull := byte('\t'), `\N`
	if cp.Format == CopyCSV {
		dDelim, dNull = ',', ""
	} else if quote != nil || escape != nil {
		return pgError(pgwire.FeatureNotSupported, "COPY QUOTE and ESCAPE are available only in CSV mode", "")
	}
	if cp.Delimiter, err = one("delimiter", delim, dDelim); err != nil {
		return err
	}
	cp.Null = dNull
	if null != nil {
		cp.Null = *null
	}
	if cp.Format == CopyCSV {
		if cp.Quote, err = one("quote", quote, '"'); err != nil {
			return err
		}
		if cp.Escape, err = one("escape", escape, cp.Quote); err != nil {
			return err
		}
	}
	// Other option mistakes (delimiter = quote, newline delimiter…) are
	// Postgres's to report: it checks them before asking for any data.
	return nil
}

// defString is a DefElem's argument as text (strings, identifiers, numbers).
func defString(d *pg.DefElem) string {
	if d.Arg == nil {
		return ""
	}
	if s := d.Arg.GetString_(); s != nil {
		return s.Sval
	}
	if i := d.Arg.GetInteger(); i != nil {
		return fmt.Sprint(i.Ival)
	}
	if b := d.Arg.GetBoolean(); b != nil {
		return fmt.Sprint(b.Boolval)
	}
	if a := d.Arg.GetAConst(); a != nil {
		if s := a.GetSval(); s != nil {
			return s.Sval
		}
	}
	return ""
}

// namesColumn reports whether a FORCE_NULL / FORCE_NOT_NULL list names col
// (or is *).
func namesColumn(d *pg.DefElem, col string) bool {
	if d.Arg.GetAStar() != nil {
		return true
	}
	for _, n := range d.Arg.GetList().GetItems() {
		if n.GetString_().GetSval() == col || n.GetAStar() != nil {
			return true
		}
	}
	return false
}

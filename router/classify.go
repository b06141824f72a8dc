package router

import (
	"fmt"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// stmtClass is what one statement does apart from shard choice.
type stmtClass struct {
	role     Role
	why      string // reason for RolePrimary
	tx       TxEffect
	savept   bool // SAVEPOINT / RELEASE / ROLLBACK TO
	savecmd  *SavepointCmd
	setLocal bool // SET LOCAL, SET TRANSACTION
	sets     []SetVar
	pin      string
	unpin    bool
	local    *LocalCmd
	dealloc  *Deallocate
	err      error // pgrouter.* misuse
	anyDst   bool  // utility statement with no data: any shard will do
	dml      bool  // SELECT/INSERT/UPDATE/DELETE/MERGE/EXPLAIN/COPY/DECLARE: shard analysis applies
	writes   bool  // statement itself modifies its target relation (for reference tables)
}

func (c *stmtClass) primary(why string) {
	if c.role != RolePrimary {
		c.role, c.why = RolePrimary, why
	}
}

const cursorOptHold = 0x0020 // CURSOR_OPT_HOLD in parsenodes.h

// classify looks at one top-level statement.
func (r *Router) classify(n *pg.Node, text string) stmtClass {
	var c stmtClass
	switch s := n.Node.(type) {
	case *pg.Node_SelectStmt:
		c.dml = true
	case *pg.Node_InsertStmt, *pg.Node_UpdateStmt, *pg.Node_DeleteStmt, *pg.Node_MergeStmt:
		c.dml, c.writes = true, true
		c.primary(stmtName(n) + " writes")
	case *pg.Node_ExplainStmt:
		c.dml = true
		inner := r.classify(s.ExplainStmt.Query, text)
		if inner.role == RolePrimary {
			if explainAnalyze(s.ExplainStmt.Options) {
				c.primary("EXPLAIN ANALYZE executes: " + inner.why)
			} else {
				c.primary("EXPLAIN of a write: " + inner.why)
			}
		}
		c.pin = inner.pin
		return c
	case *pg.Node_CopyStmt:
		c.dml = true
		if s.CopyStmt.IsFrom {
			c.writes = true
			c.primary("COPY FROM writes")
		}
	case *pg.Node_DeclareCursorStmt:
		c.dml = true
		if s.DeclareCursorStmt.Options&cursorOptHold != 0 {
			c.pin = "DECLARE … WITH HOLD cursor"
		}
	case *pg.Node_TransactionStmt:
		r.classifyTx(s.TransactionStmt, &c)
		c.anyDst = true
		return c
	case *pg.Node_VariableSetStmt:
		r.classifySet(s.VariableSetStmt, text, &c)
		c.anyDst = true
		return c
	case *pg.Node_VariableShowStmt:
		c.anyDst = true
		if name := strings.ToLower(s.VariableShowStmt.Name); strings.HasPrefix(name, "pgrouter.") {
			r.localShow(name, &c)
		}
		return c
	case *pg.Node_DiscardStmt:
		c.anyDst = true
		if s.DiscardStmt.Target == pg.DiscardMode_DISCARD_ALL {
			c.sets = []SetVar{{All: true, Reset: true}}
			c.unpin = true
		}
		return c
	case *pg.Node_PrepareStmt:
		c.anyDst, c.pin = true, "SQL PREPARE"
		c.primary("PREPARE: the statement may write when executed")
		return c
	case *pg.Node_ExecuteStmt:
		c.anyDst = true
		c.primary("EXECUTE of a prepared statement")
		return c
	case *pg.Node_DeallocateStmt:
		c.anyDst, c.dealloc = true, &Deallocate{Name: s.DeallocateStmt.Name, All: s.DeallocateStmt.Name == ""}
		return c
	case *pg.Node_FetchStmt, *pg.Node_ClosePortalStmt, *pg.Node_LoadStmt:
		c.anyDst = true
		return c
	case *pg.Node_ListenStmt:
		c.anyDst, c.pin = true, "LISTEN"
		c.primary("LISTEN")
		return c
	case *pg.Node_UnlistenStmt:
		c.anyDst = true
		c.unpin = s.UnlistenStmt.Conditionname == ""
		c.primary("UNLISTEN")
		return c
	case *pg.Node_NotifyStmt:
		c.anyDst = true
		c.primary("NOTIFY")
		return c
	case *pg.Node_CreateStmt:
		if s.CreateStmt.Relation.GetRelpersistence() == "t" {
			c.pin, c.anyDst = "temporary table", true
		}
		c.primary("DDL")
	case *pg.Node_ViewStmt:
		if s.ViewStmt.View.GetRelpersistence() == "t" {
			c.pin, c.anyDst = "temporary view", true
		}
		c.primary("DDL")
	case *pg.Node_CreateSeqStmt:
		if s.CreateSeqStmt.Sequence.GetRelpersistence() == "t" {
			c.pin, c.anyDst = "temporary sequence", true
		}
		c.primary("DDL")
	case *pg.Node_CreateTableAsStmt:
		if s.CreateTableAsStmt.Into.GetRel().GetRelpersistence() == "t" {
			c.pin, c.anyDst = "temporary table", true
		}
		c.primary("CREATE TABLE AS writes")
	case *pg.Node_LockStmt:
		c.primary("LOCK")
	case *pg.Node_CallStmt:
		c.primary("CALL")
	case *pg.Node_DoStmt:
		c.primary("DO")
	default:
		c.primary(stmtName(n))
	}
	return c
}

// treeFacts is what one generic walk over a statement collects.
type treeFacts struct {
	rangeVars []*pg.RangeVar // relations named (not SELECT INTO targets)
	maxParam  int            // highest $n
}

// droppedTables are the tables DROP TABLE names (as relations, which the
// statement itself holds as name lists).
func droppedTables(d *pg.DropStmt) []*pg.RangeVar {
	if d.RemoveType != pg.ObjectType_OBJECT_TABLE {
		return nil
	}
	var out []*pg.RangeVar
	for _, o := range d.Objects {
		var parts []string
		for _, n := range o.GetList().GetItems() {
			parts = append(parts, n.GetString_().GetSval())
		}
		switch len(parts) {
		case 1:
			out = append(out, &pg.RangeVar{Relname: parts[0]})
		case 2:
			out = append(out, &pg.RangeVar{Schemaname: parts[0], Relname: parts[1]})
		}
	}
	return out
}

// scanTree walks the whole statement once and finds what anywhere in it
// forces the primary or pins (write-function calls, locking clauses, SELECT
// INTO, data-modifying CTEs), plus the relations and parameters it names.
func (r *Router) scanTree(root *pg.Node, c *stmtClass) treeFacts {
	var f treeFacts
	top := root.ProtoReflect().WhichOneof(root.ProtoReflect().Descriptor().Oneofs().Get(0))
	var topMsg any
	if top != nil {
		topMsg = root.ProtoReflect().Get(top).Message().Interface()
	}
	walkMsgs(root.ProtoReflect(), func(m protoreflect.Message) bool {
		switch x := m.Interface().(type) {
		case *pg.IntoClause:
			return false
		case *pg.RangeVar:
			f.rangeVars = append(f.rangeVars, x)
		case *pg.DropStmt:
			f.rangeVars = append(f.rangeVars, droppedTables(x)...)
		case *pg.ParamRef:
			if int(x.Number) > f.maxParam {
				f.maxParam = int(x.Number)
			}
		case *pg.FuncCall:
			r.funcFacts(x, c)
		case *pg.SelectStmt:
			if len(x.LockingClause) > 0 {
				c.primary("SELECT … FOR UPDATE/SHARE locks rows")
			}
			if x.IntoClause != nil {
				c.primary("SELECT INTO creates a table")
				if x.IntoClause.GetRel().GetRelpersistence() == "t" && c.pin == "" {
					c.pin = "temporary table"
				}
			}
		case *pg.InsertStmt, *pg.UpdateStmt, *pg.DeleteStmt, *pg.MergeStmt:
			if x != topMsg {
				c.primary("data-modifying statement inside the query")
			}
		}
		return true
	})
	return f
}

func (r *Router) funcFacts(x *pg.FuncCall, c *stmtClass) {
	schema, name := lastName(x.Funcname)
	if r.writeFuncs.has(schema, name) {
		c.primary(fmt.Sprintf("calls %s()", name))
	}
	if isSessionAdvisoryLock(name) && c.pin == "" {
		c.pin = "session advisory lock " + name + "()"
	}
	if name == "set_config" && !isLocalSetConfig(x.Args) && c.pin == "" {
		c.pin = "set_config(…, is_local => false)"
	}
}

// isLocalSetConfig reports set_config(name, value, true) with a literal true.
func isLocalSetConfig(args []*pg.Node) bool {
	if len(args) != 3 {
		return false
	}
	a := args[2].GetAConst()
	if a == nil {
		if tc := args[2].GetTypeCast(); tc != nil {
			a = tc.Arg.GetAConst()
		}
	}
	if a == nil {
		return false
	}
	if b := a.GetBoolval(); b != nil {
		return b.Boolval
	}
	if s := a.GetSval(); s != nil {
		v := strings.ToLower(s.Sval)
		return v == "true" || v == "on" || v == "t" || v == "yes"
	}
	return false
}

func explainAnalyze(opts []*pg.Node) bool {
	for _, o := range opts {
		d := o.GetDefElem()
		if d == nil || strings.ToLower(d.Defname) != "analyze" {
			continue
		}
		return defElemBool(d, true)
	}
	return false
}

// defElemBool reads a boolean option (ANALYZE, ANALYZE false, READ ONLY…).
func defElemBool(d *pg.DefElem, dflt bool) bool {
	if d.Arg == nil {
		return dflt
	}
	if b := d.Arg.GetBoolean(); b != nil {
		return b.Boolval
	}
	if i := d.Arg.GetInteger(); i != nil {
		return i.Ival != 0
	}
	if a := d.Arg.GetAConst(); a != nil {
		if i := a.GetIval(); i != nil {
			return i.Ival != 0
		}
		if b := a.GetBoolval(); b != nil {
			return b.Boolval
		}
		if s := a.GetSval(); s != nil {
			return boolWord(s.Sval, dflt)
		}
	}
	if s := d.Arg.GetString_(); s != nil {
		return boolWord(s.Sval, dflt)
	}
	return dflt
}

func boolWord(s string, dflt bool) bool {
	switch strings.ToLower(s) {
	case "true", "on", "t", "yes", "y", "1":
		return true
	case "false", "off", "f", "no", "n", "0":
		return false
	}
	return dflt
}

func (r *Router) classifyTx(t *pg.TransactionStmt, c *stmtClass) {
	switch t.Kind {
	case pg.TransactionStmtKind_TRANS_STMT_BEGIN, pg.TransactionStmtKind_TRANS_STMT_START:
		c.tx = TxBegin
		if txReadOnly(t.Options) {
			c.tx = TxBeginReadOnly
		}
	case pg.TransactionStmtKind_TRANS_STMT_COMMIT:
		c.tx = TxCommit
	case pg.TransactionStmtKind_TRANS_STMT_ROLLBACK:
		c.tx = TxRollback
	case pg.TransactionStmtKind_TRANS_STMT_PREPARE:
		c.tx = TxPrepare
		c.primary("PREPARE TRANSACTION")
	case pg.TransactionStmtKind_TRANS_STMT_COMMIT_PREPARED:
		c.tx = TxCommit
		c.primary("COMMIT PREPARED")
	case pg.TransactionStmtKind_TRANS_STMT_ROLLBACK_PREPARED:
		c.primary("ROLLBACK PREPARED")
	case pg.TransactionStmtKind_TRANS_STMT_SAVEPOINT:
		c.savept, c.savecmd = true, &SavepointCmd{Kind: SavepointSet, Name: t.SavepointName}
	case pg.TransactionStmtKind_TRANS_STMT_RELEASE:
		c.savept, c.savecmd = true, &SavepointCmd{Kind: SavepointRelease, Name: t.SavepointName}
	case pg.TransactionStmtKind_TRANS_STMT_ROLLBACK_TO:
		c.savept, c.savecmd = true, &SavepointCmd{Kind: SavepointRollbackTo, Name: t.SavepointName}
	}
}

// txReadOnly reads transaction_read_only from BEGIN/START/SET TRANSACTION options.
func txReadOnly(opts []*pg.Node) bool {
	ro := false
	for _, o := range opts {
		if d := o.GetDefElem(); d != nil && d.Defname == "transaction_read_only" {
			ro = defElemBool(d, true)
		}
	}
	return ro
}

// stmtName is the SQL command name of a statement node, for reasons.
// schemaChange reports whether n changes the definition of database
// objects that prepared statements and column lists depend on.
func schemaChange(n *pg.Node) bool {
	switch n.Node.(type) {
	case *pg.Node_AlterTableStmt, *pg.Node_RenameStmt, *pg.Node_DropStmt, *pg.Node_CreateStmt, *pg.Node_ViewStmt,
		*pg.Node_AlterObjectSchemaStmt, *pg.Node_CompositeTypeStmt, *pg.Node_CreateEnumStmt, *pg.Node_AlterEnumStmt,
		*pg.Node_AlterDomainStmt, *pg.Node_CreateDomainStmt, *pg.Node_DefineStmt, *pg.Node_CreateFunctionStmt,
		*pg.Node_AlterFunctionStmt, *pg.Node_CreateTableAsStmt, *pg.Node_AlterTypeStmt:
		return true
	}
	return false
}

func stmtName(n *pg.Node) string {
	switch n.Node.(type) {
	case *pg.Node_InsertStmt:
		return "INSERT"
	case *pg.Node_UpdateStmt:
		return "UPDATE"
	case *pg.Node_DeleteStmt:
		return "DELETE"
	case *pg.Node_MergeStmt:
		return "MERGE"
	case *pg.Node_SelectStmt:
		return "SELECT"
	}
	name := fmt.Sprintf("%T", n.Node)
	name = strings.TrimPrefix(name, "*pg_query.Node_")
	return strings.TrimSuffix(name, "Stmt") + " (utility)"
}

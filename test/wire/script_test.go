package wire

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"
)

// script is one parsed testdata/*.pgt file.
type script struct {
	name string
	bug  string // "# bug:" text: a known divergence through pgrouter
	// "# intermittent:" text: the bug shows only in some runs (a race), so
	// a run where the script matches is logged, not failed as a stale mark.
	intermittent string
	differs      []string // "# differs:" lines: why an ignore= is needed
	blocks       []block
	closes       bool // the script ends the connection itself (Terminate/EOF)
}

// block is a send (frontend messages, written in one write) or an until
// (read targets: backend message type names, "EOF" for a server close).
type block struct {
	line    int
	send    []string // raw message lines, decoded per client ($SCHEMA)
	until   []string
	ignore  map[string][]string // message type → fields to drop ("" = whole body)
	isUntil bool
	// unordered: runs of DataRows compare as sets (SQL leaves the order of
	// e.g. UPDATE … RETURNING over several shards undefined)
	unordered bool
}

func loadScripts(dir string) ([]*script, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.pgt"))
	if err != nil {
		return nil, err
	}
	var out []*script
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		s, err := parseScript(strings.TrimSuffix(filepath.Base(f), ".pgt"), string(data))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		out = append(out, s)
	}
	return out, nil
}

func parseScript(name, text string) (*script, error) {
	s := &script{name: name}
	var cur *block
	for i, raw := range strings.Split(text, "\n") {
		line := strings.TrimSpace(raw)
		switch {
		case line == "":
		case strings.HasPrefix(line, "#"):
			c := strings.TrimSpace(strings.TrimPrefix(line, "#"))
			if v, ok := strings.CutPrefix(c, "bug:"); ok {
				s.bug = strings.TrimSpace(v)
			} else if v, ok := strings.CutPrefix(c, "intermittent:"); ok {
				s.intermittent = strings.TrimSpace(v)
			} else if v, ok := strings.CutPrefix(c, "differs:"); ok {
				s.differs = append(s.differs, strings.TrimSpace(v))
			}
		case line == "send":
			s.blocks = append(s.blocks, block{line: i + 1})
			cur = &s.blocks[len(s.blocks)-1]
		case line == "until" || strings.HasPrefix(line, "until "):
			b := block{line: i + 1, isUntil: true, ignore: map[string][]string{}}
			for _, opt := range strings.Fields(line)[1:] {
				if opt == "unordered" {
					b.unordered = true
					continue
				}
				v, ok := strings.CutPrefix(opt, "ignore=")
				if !ok {
					return nil, fmt.Errorf("line %d: unknown until option %q", i+1, opt)
				}
				for _, f := range strings.Split(v, ",") {
					typ, field, _ := strings.Cut(f, ".")
					b.ignore[typ] = append(b.ignore[typ], field)
				}
			}
			s.blocks = append(s.blocks, b)
			cur = &s.blocks[len(s.blocks)-1]
		case cur == nil:
			return nil, fmt.Errorf("line %d: %q outside a send/until block", i+1, line)
		case cur.isUntil:
			cur.until = append(cur.until, line)
		default:
			if _, err := decodeFrontend(line, "x"); err != nil {
				return nil, fmt.Errorf("line %d: %w", i+1, err)
			}
			cur.send = append(cur.send, line)
		}
	}
	return s, s.check()
}

// check enforces the script rules: reads follow sends, every ignore= is
// explained, and a script that closes the connection says so last.
func (s *script) check() error {
	if len(s.blocks) == 0 {
		return fmt.Errorf("empty script")
	}
	ignores := false
	for i, b := range s.blocks {
		if b.isUntil && len(b.until) == 0 || !b.isUntil && len(b.send) == 0 {
			return fmt.Errorf("line %d: empty block", b.line)
		}
		if len(b.ignore) > 0 {
			ignores = true
		}
		for _, u := range b.until {
			if u == "EOF" {
				if i != len(s.blocks)-1 {
					return fmt.Errorf("line %d: EOF must be the last read", b.line)
				}
				s.closes = true
			}
		}
	}
	if s.intermittent != "" && s.bug == "" {
		return fmt.Errorf("\"# intermittent:\" without a \"# bug:\" line")
	}
	if ignores && len(s.differs) == 0 {
		return fmt.Errorf("ignore= without a \"# differs:\" line saying why")
	}
	if last := s.blocks[len(s.blocks)-1]; !last.isUntil {
		return fmt.Errorf("script ends with a send: read its answer (until …)")
	}
	return nil
}

// decodeFrontend turns `Type {json}` (or a JSON object with "Type") into a
// message; $SCHEMA becomes the client's schema.
func decodeFrontend(line, schema string) (pgproto3.FrontendMessage, error) {
	typ, body, _ := strings.Cut(line, " ")
	if strings.HasPrefix(line, "{") {
		var t struct{ Type string }
		if err := json.Unmarshal([]byte(line), &t); err != nil {
			return nil, err
		}
		typ, body = t.Type, line
	}
	body = strings.TrimSpace(strings.ReplaceAll(body, "$SCHEMA", schema))
	if body == "" {
		body = "{}"
	}
	switch typ {
	case "CopyData":
		return decodeCopyData(body)
	case "FunctionCall":
		return decodeFunctionCall(body)
	}
	m := newFrontend(typ)
	if m == nil {
		return nil, fmt.Errorf("unknown frontend message %q", typ)
	}
	if err := json.Unmarshal([]byte(body), m); err != nil {
		return nil, fmt.Errorf("%s: %w", typ, err)
	}
	return m, nil
}

func newFrontend(typ string) pgproto3.FrontendMessage {
	switch typ {
	case "Parse":
		return &pgproto3.Parse{}
	case "Bind":
		return &pgproto3.Bind{}
	case "Describe":
		return &pgproto3.Describe{}
	case "Execute":
		return &pgproto3.Execute{}
	case "Close":
		return &pgproto3.Close{}
	case "Sync":
		return &pgproto3.Sync{}
	case "Flush":
		return &pgproto3.Flush{}
	case "Query":
		return &pgproto3.Query{}
	case "Terminate":
		return &pgproto3.Terminate{}
	case "CopyDone":
		return &pgproto3.CopyDone{}
	case "CopyFail":
		return &pgproto3.CopyFail{}
	}
	return nil
}

// decodeCopyData takes {"Text":"1\tx\n"} (readable) or pgproto3's {"Data":hex}.
func decodeCopyData(body string) (pgproto3.FrontendMessage, error) {
	var v struct{ Text, Data string }
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		return nil, fmt.Errorf("CopyData: %w", err)
	}
	if v.Text != "" {
		return &pgproto3.CopyData{Data: []byte(v.Text)}, nil
	}
	d, err := hex.DecodeString(v.Data)
	if err != nil {
		return nil, fmt.Errorf("CopyData: %w", err)
	}
	return &pgproto3.CopyData{Data: d}, nil
}

// decodeFunctionCall takes {"Function":oid,"Args":["text",null…]}: text
// arguments, text result (pgproto3 has no JSON form for FunctionCall).
func decodeFunctionCall(body string) (pgproto3.FrontendMessage, error) {
	var v struct {
		Function uint32
		Args     []*string
	}
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		return nil, fmt.Errorf("FunctionCall: %w", err)
	}
	m := &pgproto3.FunctionCall{Function: v.Function, ArgFormatCodes: []uint16{0}}
	for _, a := range v.Args {
		if a == nil {
			m.Arguments = append(m.Arguments, nil)
		} else {
			m.Arguments = append(m.Arguments, []byte(*a))
		}
	}
	return m, nil
}

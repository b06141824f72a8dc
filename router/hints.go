package router

import (
	"fmt"
	"strings"
)

// hints are the pgrouter directives found in comments of a statement text:
//
//	/* pgrouter: shard=NAME */  /* pgrouter: key=VALUE */  -- pgrouter: role=primary
//
// Several may share one comment, separated by spaces or commas. They are read
// from comment tokens only (never from inside string literals).
type hints struct {
	shard    string // shard name
	key      string // shard-key value (text form)
	hasKey   bool
	role     string // primary | replica
	hasShard bool
}

const hintPrefix = "pgrouter:"

func isHintComment(c string) bool {
	return strings.HasPrefix(strings.TrimLeft(commentBody(c), " \t\r\n"), hintPrefix)
}

func commentBody(c string) string {
	if strings.HasPrefix(c, "--") {
		return c[2:]
	}
	if len(c) >= 4 {
		return c[2 : len(c)-2]
	}
	return ""
}

// scanHints collects the hints of sql. Malformed hints are errors: a typo in a
// hint must not silently route somewhere else.
func scanHints(sql string) (hints, error) {
	var h hints
	for i := 0; i < len(sql); {
		kind, j := nextToken(sql, i)
		if kind == tkEOF {
			break
		}
		if kind == tkComment && isHintComment(sql[i:j]) {
			body := strings.TrimSpace(commentBody(sql[i:j]))
			if err := h.parse(strings.TrimSpace(body[len(hintPrefix):])); err != nil {
				return h, err
			}
		}
		i = j
	}
	return h, nil
}

func (h *hints) parse(body string) error {
	fields := strings.FieldsFunc(body, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' || r == '\n' })
	for _, f := range fields {
		k, v, ok := strings.Cut(f, "=")
		if !ok || v == "" {
			return badHint(f)
		}
		v = strings.Trim(v, `'"`)
		switch strings.ToLower(k) {
		case "shard":
			h.shard, h.hasShard = v, true
		case "key":
			h.key, h.hasKey = v, true
		case "role":
			v = strings.ToLower(v)
			if v != "primary" && v != "replica" {
				return badHint(f)
			}
			h.role = v
		default:
			return badHint(f)
		}
	}
	return nil
}

func badHint(f string) error {
	return pgError(codeInvalidParameter, fmt.Sprintf("invalid pgrouter hint %q", f),
		"hints are /* pgrouter: shard=NAME */, /* pgrouter: key=VALUE */ or /* pgrouter: role=primary|replica */")
}

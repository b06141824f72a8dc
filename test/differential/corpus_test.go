package differential

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

// query is one corpus entry.
//
// File format (testdata/*.sql): one statement per line, ending in ';'.
// Lines starting with "--" are comments, except directives, which apply to
// the next statement:
//
//	-- @ordered           ORDER BY makes the order total: compare as lists
//	-- @params a|b|NULL   text parameters $1, $2, … ("NULL" is SQL NULL)
//	-- @error text        (unsupported.sql) the 0A000 message must contain text
//	-- @tx                (unsupported.sql) run inside BEGIN … ROLLBACK
type query struct {
	sql     string
	line    int
	ordered bool
	params  []*string
	errText string
	tx      bool
}

func (q query) String() string { return fmt.Sprintf("line %d: %s", q.line, q.sql) }

func loadCorpus(path string) ([]query, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []query
	var next query
	sc := bufio.NewScanner(f)
	for ln := 1; sc.Scan(); ln++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "":
		case strings.HasPrefix(line, "-- @"):
			dir, arg, _ := strings.Cut(strings.TrimPrefix(line, "-- @"), " ")
			switch dir {
			case "ordered":
				next.ordered = true
			case "tx":
				next.tx = true
			case "params":
				for _, p := range strings.Split(arg, "|") {
					if p == "NULL" {
						next.params = append(next.params, nil)
					} else {
						next.params = append(next.params, &p)
					}
				}
			case "error":
				next.errText = arg
			default:
				return nil, fmt.Errorf("%s:%d: unknown directive %q", path, ln, dir)
			}
		case strings.HasPrefix(line, "--"):
		default:
			if !strings.HasSuffix(line, ";") {
				return nil, fmt.Errorf("%s:%d: a statement is one line ending in ';'", path, ln)
			}
			next.sql, next.line = strings.TrimSuffix(line, ";"), ln
			out = append(out, next)
			next = query{}
		}
	}
	return out, sc.Err()
}

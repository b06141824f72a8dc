package readme

import (
	"fmt"
	"strings"
)

// block is one fenced code block of a Markdown file.
type block struct {
	lang string // the info string: sh, console, sql, yaml, "" …
	line int    // 1-based line of the opening fence
	text string
}

// codeBlocks returns the fenced (```) code blocks of md in order.
func codeBlocks(md string) []block {
	var out []block
	var cur *block
	var body []string
	for i, l := range strings.Split(md, "\n") {
		trimmed := strings.TrimSpace(l)
		switch {
		case cur == nil && strings.HasPrefix(trimmed, "```"):
			cur = &block{lang: strings.TrimSpace(strings.TrimPrefix(trimmed, "```")), line: i + 1}
			body = nil
		case cur != nil && trimmed == "```":
			cur.text = strings.Join(body, "\n")
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			body = append(body, l)
		}
	}
	return out
}

// shellLines splits a shell snippet into commands: comments and blank
// lines dropped, backslash continuations joined, each command split into
// words with shell quoting ('…', "…" with \-escapes) undone.
func shellLines(text string) ([][]string, error) {
	var out [][]string
	var pending string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasSuffix(l, "\\") {
			pending += strings.TrimSuffix(l, "\\") + " "
			continue
		}
		words, err := shellWords(pending + l)
		pending = ""
		if err != nil {
			return nil, err
		}
		if len(words) > 0 {
			out = append(out, words)
		}
	}
	return out, nil
}

// shellWords splits one command line into words; # at the start of a word
// begins a comment.
func shellWords(line string) ([]string, error) {
	var words []string
	var w strings.Builder
	inWord := false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == ' ' || c == '\t':
			if inWord {
				words, inWord = append(words, w.String()), false
				w.Reset()
			}
		case c == '#' && !inWord:
			return words, nil
		case c == '\'':
			end := strings.IndexByte(line[i+1:], '\'')
			if end < 0 {
				return nil, fmt.Errorf("unterminated ' in %q", line)
			}
			w.WriteString(line[i+1 : i+1+end])
			i += end + 1
			inWord = true
		case c == '"':
			j := i + 1
			for ; j < len(line) && line[j] != '"'; j++ {
				if line[j] == '\\' && j+1 < len(line) && strings.IndexByte(`"\$`+"`", line[j+1]) >= 0 {
					j++
				}
				w.WriteByte(line[j])
			}
			if j == len(line) {
				return nil, fmt.Errorf("unterminated \" in %q", line)
			}
			i = j
			inWord = true
		default:
			w.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, nil
}

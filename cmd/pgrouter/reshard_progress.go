package main

import (
	"fmt"
	"io"
	"os"
	"strings"
)

// progress prints SHOW RESHARD as it changes: one line redrawn in place on
// a terminal (with a bar over the copy's chunks), else a plain line per
// change, for logs and pipes.
type progress struct {
	out  io.Writer
	tty  bool
	last string
}

func newProgress(out io.Writer) *progress {
	p := &progress{out: out}
	if f, ok := out.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

const barWidth = 30

func (p *progress) show(st map[string]string) {
	line := progressLine(st, p.tty)
	if line == p.last {
		return
	}
	p.last = line
	if p.tty {
		fmt.Fprintf(p.out, "\r\033[K%s", line)
		return
	}
	fmt.Fprintln(p.out, line)
}

// end finishes the redrawn line on a terminal.
func (p *progress) end() {
	if p.tty && p.last != "" {
		fmt.Fprintln(p.out)
	}
}

func progressLine(st map[string]string, bar bool) string {
	line := fmt.Sprintf("reshard %s: %s", st["id"], st["phase"])
	switch st["phase"] {
	case "copy":
		chunks := st["chunks"]
		if bar {
			var done, total int
			fmt.Sscanf(chunks, "%d/%d", &done, &total)
			n := 0
			if total > 0 {
				n = done * barWidth / total
			}
			chunks = "[" + strings.Repeat("#", n) + strings.Repeat(".", barWidth-n) + "] " + chunks
		}
		if st["table"] != "" {
			line += " " + st["table"]
		}
		line += fmt.Sprintf(" chunks %s, %s rows copied", chunks, st["rows_copied"])
	case "catchup", "cutover":
		line += fmt.Sprintf(", %s rows copied, lag %s bytes", st["rows_copied"], st["lag_bytes"])
	case "cleanup", "done":
		line += fmt.Sprintf(", %s rows copied, writes held %ss at the cutover", st["rows_copied"], st["held_seconds"])
	}
	if st["error"] != "" {
		line += ", error: " + st["error"]
	}
	return line
}

package readme

import (
	"reflect"
	"testing"
)

func TestShellWords(t *testing.T) {
	cases := map[string][]string{
		`psql "postgres://a@h/db?x=1" -c 'select $1, "q"' # comment`: {"psql", "postgres://a@h/db?x=1", "-c", `select $1, "q"`},
		`  # only a comment`:                 nil,
		`echo a"b c"'d e'f`:                  {"echo", "ab cd ef"},
		`echo "say \"hi\" \$HOME" x#not-one`: {"echo", `say "hi" $HOME`, "x#not-one"},
	}
	for line, want := range cases {
		got, err := shellWords(line)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("shellWords(%q) = %q, %v; want %q", line, got, err, want)
		}
	}
	if _, err := shellWords(`psql -c 'unterminated`); err == nil {
		t.Error("an unterminated quote was accepted")
	}
}

func TestCodeBlocks(t *testing.T) {
	md := "text\n```sh\nmake demo \\\n  --x\n```\n\n```console\n$ a\nout\n```\n```\nplain\n```\n"
	got := codeBlocks(md)
	want := []block{{"sh", 2, "make demo \\\n  --x"}, {"console", 7, "$ a\nout"}, {"", 11, "plain"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("codeBlocks = %#v, want %#v", got, want)
	}
	cmds, err := shellLines(got[0].text)
	if err != nil || !reflect.DeepEqual(cmds, [][]string{{"make", "demo", "--x"}}) {
		t.Errorf("shellLines = %q, %v", cmds, err)
	}
}

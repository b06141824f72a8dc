package router

import (
	"strings"
	"sync/atomic"
)

// Memo keeps one value derived from a statement text, such as the
// cross-shard merge plan the proxy builds for a multi-shard SELECT (in
// router/merge, which the router does not import). It remembers the result
// for the last text only: a Plan's extended-protocol executions all use one
// text, and a simple-protocol Plan (keyed by the normalised text) sees the
// same raw text again whenever the client repeats it; texts that differ in
// their literals rebuild and replace the entry. Safe for concurrent use;
// the zero value is ready.
type Memo struct {
	last atomic.Pointer[memoEntry]
}

type memoEntry struct {
	text string
	val  any
	err  error
}

// Get returns build(text), computed once per text while text stays the
// last one asked for. build must be a pure function of text: its result,
// error included, is shared by every caller. build gets a private copy of
// text, which it may keep (the caller's text may alias a reused buffer).
// Concurrent first calls may each run build; the last result is kept.
func (m *Memo) Get(text string, build func(text string) (any, error)) (any, error) {
	if e := m.last.Load(); e != nil && e.text == text {
		return e.val, e.err
	}
	text = strings.Clone(text)
	val, err := build(text)
	m.last.Store(&memoEntry{text: text, val: val, err: err})
	return val, err
}

package reshard

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Phase is where a reshard is.
type Phase string

// The phases, in order; a reshard ends done or aborted.
const (
	PhaseCopy    Phase = "copy"
	PhaseCatchup Phase = "catchup"
	PhaseCutover Phase = "cutover" // the config file may already name the next placement
	PhaseCleanup Phase = "cleanup" // switched: the sources' moved rows are being deleted
	PhaseDone    Phase = "done"
	PhaseAborted Phase = "aborted"
)

// phases lists every phase (for the phase metric).
var phases = []Phase{PhaseCopy, PhaseCatchup, PhaseCutover, PhaseCleanup, PhaseDone, PhaseAborted}

// finished reports whether a reshard in phase p is over.
func (p Phase) finished() bool { return p == PhaseDone || p == PhaseAborted }

// state is a reshard's progress, persisted in data_dir/reshard/state.json
// after every step so a restarted pgrouter resumes where it stopped.
type state struct {
	ID       string       `json:"id"`
	Phase    Phase        `json:"phase"`
	Error    string       `json:"error,omitempty"`
	Started  time.Time    `json:"started"`
	Prev     placement    `json:"prev_placement"`      // the running one when the reshard began
	Dir      *dirMove     `json:"directory,omitempty"` // a directory-sharded table's keys (else the placement moves)
	Sources  []sourceProg `json:"sources"`
	Moves    []moveProg   `json:"moves"`
	HeldSecs float64      `json:"held_seconds"`
}

// sourceProg is one source's slot: StartLSN is set once slot and
// publication exist.
type sourceProg struct {
	Slot     string `json:"slot"`
	StartLSN string `json:"start_lsn,omitempty"`
}

// moveProg is one move's copy progress: Done[i] once chunk i is committed
// on the target.
type moveProg struct {
	Table  string `json:"table"`
	From   string `json:"from"`
	To     string `json:"to"`
	Done   []bool `json:"done"`
	Copied int64  `json:"rows_copied"`
}

// stateDir is where a reshard keeps its state and the next config.
func stateDir(dataDir string) string { return filepath.Join(dataDir, "reshard") }

func statePath(dataDir string) string { return filepath.Join(stateDir(dataDir), "state.json") }

// nextPath is the copy of the next config the reshard works from (the file
// given to RESHARD TO may change or vanish meanwhile).
func nextPath(dataDir string) string { return filepath.Join(stateDir(dataDir), "next.yaml") }

// loadState reads the persisted state; nil without error when there is none.
func loadState(dataDir string) (*state, error) {
	b, err := os.ReadFile(statePath(dataDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("reshard state %s: %w", statePath(dataDir), err)
	}
	return &st, nil
}

// save writes st atomically (temporary file, fsync, rename).
func (st *state) save(dataDir string) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(statePath(dataDir), b)
}

// writeAtomic replaces path with data: readers see the old file or the new
// one, also after a crash.
func writeAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // gone after the rename
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

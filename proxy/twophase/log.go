// Package twophase keeps pgrouter's two-phase commit decision log: the one
// durable record that lets a restarted pgrouter finish, the same way on
// every shard, a transaction it had prepared on several shards.
//
// The protocol is presumed abort: nothing is written before PREPARE
// TRANSACTION; once every participant prepared, a "commit" record is
// appended and fsynced, and only then is COMMIT PREPARED sent. A prepared
// transaction of this instance without a commit record was never decided
// and is rolled back on recovery; one with a commit record is committed.
// A "done" record (not fsynced: losing it only repeats a harmless COMMIT
// PREPARED) marks the end.
package twophase

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// Decision is a transaction whose commit was decided but not yet confirmed
// on every participant.
type Decision struct {
	GID       string
	Database  string // the logical database (pgrouter's name)
	User      string
	Shards    []string
	DecidedAt time.Time
}

// Log is the append-only decision log of one pgrouter instance.
type Log struct {
	mu       sync.Mutex
	dir      string
	f        *os.File
	instance string
	seq      uint64
	pending  map[string]Decision // decided, not yet done
	records  int                 // lines in the file (for Compact)
}

const (
	logName      = "2pc.log"
	instanceName = "instance_id"
	// GIDPrefix starts every transaction identifier pgrouter prepares.
	GIDPrefix = "pgrouter_"
)

// Open reads (or creates) the log under dir.
func Open(dir string) (*Log, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("two-phase commit data_dir: %w", err)
	}
	inst, err := instanceID(dir)
	if err != nil {
		return nil, err
	}
	l := &Log{dir: dir, instance: inst, pending: map[string]Decision{}}
	if err := l.load(); err != nil {
		return nil, err
	}
	if err := l.rewrite(); err != nil { // compact: only what is still pending
		return nil, err
	}
	return l, nil
}

// instanceID returns this data dir's identity, created on first use. Only
// prepared transactions carrying it are recovered by this instance, so
// pgrouters sharing the shards never resolve each other's.
func instanceID(dir string) (string, error) {
	p := filepath.Join(dir, instanceName)
	b, err := os.ReadFile(p)
	if err == nil {
		id := strings.TrimSpace(string(b))
		if id == "" || strings.ContainsAny(id, " _'") {
			return "", fmt.Errorf("%s: invalid instance id %q", p, id)
		}
		return id, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	var r [6]byte
	if _, err := rand.Read(r[:]); err != nil {
		return "", err
	}
	id := hex.EncodeToString(r[:])
	if err := writeFileSync(p, []byte(id+"\n")); err != nil {
		return "", err
	}
	return id, nil
}

// Instance is the identity embedded in this instance's transaction ids.
func (l *Log) Instance() string { return l.instance }

// Owns reports whether gid was prepared by this instance.
func (l *Log) Owns(gid string) bool {
	return strings.HasPrefix(gid, GIDPrefix+l.instance+"_")
}

// NewGID returns a transaction identifier unique to this instance.
func (l *Log) NewGID() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seq++
	return fmt.Sprintf("%s%s_%d_%d", GIDPrefix, l.instance, time.Now().UnixNano(), l.seq)
}

// Commit durably records the decision to commit d; it returns only after
// the record reached the disk.
func (l *Log) Commit(d Decision) error {
	if d.DecidedAt.IsZero() {
		d.DecidedAt = time.Now()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := l.f.WriteString(commitLine(d)); err != nil {
		return err
	}
	l.records++
	if err := l.f.Sync(); err != nil {
		return err
	}
	l.pending[d.GID] = d
	return nil
}

// Done records that every participant committed gid.
func (l *Log) Done(gid string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.pending[gid]; !ok {
		return nil
	}
	delete(l.pending, gid)
	l.records++
	_, err := l.f.WriteString("done " + gid + "\n")
	return err
}

// Decided returns the pending decision for gid.
func (l *Log) Decided(gid string) (Decision, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	d, ok := l.pending[gid]
	return d, ok
}

// Pending lists decided transactions not yet confirmed everywhere, oldest first.
func (l *Log) Pending() []Decision {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.pendingLocked()
}

func (l *Log) pendingLocked() []Decision {
	out := make([]Decision, 0, len(l.pending))
	for _, d := range l.pending {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].DecidedAt.Before(out[j].DecidedAt) })
	return out
}

// Close closes the log file.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Close()
}

// commitLine is "commit GID DB USER SHARD,SHARD UNIXNANO"; names cannot
// contain spaces (config validation) so fields split on blanks.
func commitLine(d Decision) string {
	return fmt.Sprintf("commit %s %s %s %s %d\n", d.GID, d.Database, d.User, strings.Join(d.Shards, ","), d.DecidedAt.UnixNano())
}

func (l *Log) load() error {
	f, err := os.Open(filepath.Join(l.dir, logName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		fields := strings.Fields(sc.Text())
		switch {
		case len(fields) == 6 && fields[0] == "commit":
			var ns int64
			fmt.Sscan(fields[5], &ns)
			l.pending[fields[1]] = Decision{GID: fields[1], Database: fields[2], User: fields[3],
				Shards: strings.Split(fields[4], ","), DecidedAt: time.Unix(0, ns)}
		case len(fields) == 2 && fields[0] == "done":
			delete(l.pending, fields[1])
		case len(fields) == 0:
		default:
			// A torn last line (crash mid-append) was never fsynced, so its
			// decision was never acted on: ignoring it is presumed abort.
			if !sc.Scan() {
				return nil
			}
			return fmt.Errorf("%s:%d: corrupt two-phase commit log line", f.Name(), n)
		}
	}
	return sc.Err()
}

// compactAfter is how many records may accumulate before Compact rewrites
// the file (each finished transaction leaves two).
var compactAfter = 10000 // a variable so tests can lower it

// Compact rewrites the log with the pending decisions only, once enough
// finished records accumulated; recovery calls it periodically so the file
// of a long-running instance stays small.
func (l *Log) Compact() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.records < compactAfter {
		return nil
	}
	old := l.f
	if err := l.rewrite(); err != nil {
		return err
	}
	return old.Close()
}

// rewrite replaces the log with the pending decisions only, atomically
// (l.mu held, or not yet shared).
func (l *Log) rewrite() error {
	var b strings.Builder
	for _, d := range l.pendingLocked() {
		b.WriteString(commitLine(d))
	}
	p := filepath.Join(l.dir, logName)
	if err := writeFileSync(p+".tmp", []byte(b.String())); err != nil {
		return err
	}
	if err := os.Rename(p+".tmp", p); err != nil {
		return err
	}
	if d, err := os.Open(l.dir); err == nil { // make the rename durable
		d.Sync()
		d.Close()
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	l.f = f
	l.records = len(l.pending)
	return nil
}

func writeFileSync(p string, data []byte) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

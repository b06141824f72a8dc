package proxy

import (
	"context"
	"crypto/sha256"
	"os"
	"time"
)

// fileStamp is what the config watcher compares between polls: mtime and
// size are cheap (one stat); the content hash is read only when they moved,
// so touching the file without changing it does not reload.
type fileStamp struct {
	mtime time.Time
	size  int64
	sum   [sha256.Size]byte
}

// WatchConfig polls path every interval (1s when interval <= 0) until ctx
// ends or the server shuts down, and reloads through the same path as SIGHUP
// and the admin RELOAD (source "watch") whenever the file's content changes.
// A broken file is logged once, with every error's file:line, and the
// running config stays; the next change is tried again. Changes that move
// data are refused as with a plain RELOAD (RELOAD FORCE is console-only).
//
// Polling, not inotify: no new dependency, and it follows editors that
// replace the file by rename and config-management tools that swap symlinks.
func (i *Instance) WatchConfig(ctx context.Context, path string, interval time.Duration) {
	if interval <= 0 {
		interval = time.Second
	}
	log := i.Server.log
	last, err := stampFile(path, nil)
	if err != nil {
		log.Warn("config watch: cannot read the file; watching for it to appear", "file", path, "err", err.Error())
	}
	log.Info("config watch started", "file", path, "interval", interval.String())
	t := time.NewTicker(interval)
	defer t.Stop()
	failing := err != nil
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if i.Server.closing.Load() {
			return
		}
		next, err := stampFile(path, last)
		if err != nil {
			if !failing { // say it once, not every second
				log.Warn("config watch: cannot read the file; the running config stays", "file", path, "err", err.Error())
				failing = true
			}
			continue
		}
		failing = false
		if last != nil && next.sum == last.sum {
			last = next // mtime/size moved, content did not
			continue
		}
		last = next
		i.Server.Reload(path, false, "watch") // logs success or every error
	}
}

// stampFile stats path and, unless mtime and size equal prev's, hashes its
// content. With prev == nil it always hashes.
func stampFile(path string, prev *fileStamp) (*fileStamp, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if prev != nil && st.ModTime().Equal(prev.mtime) && st.Size() == prev.size {
		return prev, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return &fileStamp{mtime: st.ModTime(), size: st.Size(), sum: sha256.Sum256(data)}, nil
}

package reshard

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"
)

// cutover switches the placement through the host: with the moving keys'
// writes held and the source transactions drained, every stream reaches a
// fence (so the targets have every change), verify compares source and
// target, the config file is replaced by the next one (a restart keeps the
// new placement; a fleet member's host publishes it as a config version
// instead), and the host swaps its routers.
func (j *job) cutover(ctx context.Context) error {
	if err := j.e.update(func(st *state) { st.Phase = PhaseCutover }); err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, cutoverTimeout)
	defer cancel()
	cfgPath := j.e.host.Config().Path
	var installed bool
	// unpoint points a directory reshard's keys back at their sources
	// (the fleet's host calls it before any member releases its hold).
	unpoint := func(ctx context.Context) error {
		if !installed || j.e.st.Dir == nil {
			return nil
		}
		if err := j.e.st.Dir.point(ctx, j.p.next, true); err != nil {
			return err
		}
		installed = false
		return nil
	}
	held, err := j.e.host.Cutover(cctx, j.p.next, j.p.moves, func(ctx context.Context) error {
		if err := j.fenceAll(ctx); err != nil {
			return err
		}
		if err := j.verify(ctx); err != nil {
			return err
		}
		if d := j.e.st.Dir; d != nil { // the config stays; the lookup table moves the keys
			installed = true
			return d.point(ctx, j.p.next, false)
		}
		if j.e.publishes { // the host publishes the next config itself (a fleet version)
			return nil
		}
		if err := installConfig(cfgPath, nextPath(j.e.dataDir())); err != nil {
			return err
		}
		installed = true
		return nil
	}, unpoint)
	if errors.Is(err, ErrSwitched) {
		j.e.log.Warn("reshard switched placement, not everywhere yet", "id", j.e.st.ID, "err", err)
		j.e.update(func(st *state) { st.Phase, st.HeldSecs = PhaseCleanup, held.Seconds() })
		return err
	}
	if err != nil {
		if installed && j.e.st.Dir != nil && !j.e.publishes { // a fleet's host unpoints itself, or keeps every member holding
			err = errors.Join(err, unpoint(context.WithoutCancel(ctx)))
		} else if installed && j.e.st.Dir != nil {
			j.e.log.Warn("reshard cutover failed with the lookup table pointed at the target; every fleet member keeps holding the moving keys until RESHARD RESUME", "id", j.e.st.ID)
		} else if installed {
			err = errors.Join(err, restoreConfig(cfgPath))
		}
		j.e.update(func(st *state) { st.Phase = PhaseCatchup })
		return err
	}
	j.e.log.Info("reshard switched placement", "id", j.e.st.ID, "held_ms", held.Milliseconds())
	return j.e.update(func(st *state) { st.Phase, st.HeldSecs = PhaseCleanup, held.Seconds() })
}

// verify compares every move's rows on its source and target.
func (j *job) verify(ctx context.Context) error {
	for si, s := range j.p.sources {
		for _, i := range s.moves {
			m := j.p.moves[i]
			if err := verifyMove(ctx, j.srcs[si], j.dsts[targetKey(m.Database, m.To)], j.tables[i], m); err != nil {
				return err
			}
		}
	}
	return nil
}

// backupSuffix names the running config file's copy kept at cutover.
const backupSuffix = ".before-reshard"

// installConfig replaces the config file at path ("" when the config was
// not read from a file) with the next config, keeping the old one as
// path+".before-reshard".
func installConfig(path, next string) error {
	if path == "" {
		return nil
	}
	old, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading the config file: %w", err)
	}
	data, err := os.ReadFile(next)
	if err != nil {
		return err
	}
	if err := writeAtomic(path+backupSuffix, old); err != nil {
		return fmt.Errorf("keeping the config file: %w", err)
	}
	if err := writeAtomic(path, data); err != nil {
		return fmt.Errorf("writing the next placement to the config file: %w", err)
	}
	return nil
}

// restoreConfig puts the config file back after a cutover that failed
// after installConfig.
func restoreConfig(path string) error {
	old, err := os.ReadFile(path + backupSuffix)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return writeAtomic(path, old)
}

// slotDropWait bounds the wait for a stopped stream's walsender to release
// its slot.
const slotDropWait = 10 * time.Second

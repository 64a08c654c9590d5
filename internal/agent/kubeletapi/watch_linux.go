package kubeletapi

import (
	"context"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// watcher wakes a log follower when something in the log's directory is
// written, created or renamed in: a new record, or a rotation. Without
// inotify (no watches left, no directory yet) it falls back to polling.
type watcher struct {
	f *os.File // the inotify instance; nil when polling
}

// pollPeriod is how often a watcher without inotify wakes.
const pollPeriod = 250 * time.Millisecond

func newWatcher(dir string) *watcher {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return &watcher{}
	}
	const mask = unix.IN_MODIFY | unix.IN_CREATE | unix.IN_MOVED_TO | unix.IN_MOVED_FROM | unix.IN_CLOSE_WRITE
	if _, err := unix.InotifyAddWatch(fd, dir, mask); err != nil {
		unix.Close(fd)
		return &watcher{}
	}
	// A non-blocking descriptor joins the runtime's poller, so reads honour
	// deadlines and a cancelled request can interrupt one.
	return &watcher{f: os.NewFile(uintptr(fd), "inotify")}
}

// wait returns after a change, after at most d, or with ctx's error when
// ctx ends.
func (w *watcher) wait(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if w.f == nil {
		t := time.NewTimer(min(d, pollPeriod))
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			return nil
		}
	}
	if err := w.f.SetReadDeadline(time.Now().Add(d)); err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { w.f.SetReadDeadline(time.Now()) })
	defer stop()
	// The events themselves do not matter, only that there were some; a
	// full buffer leaves the rest to wake the next wait at once.
	var buf [4096]byte
	_, _ = w.f.Read(buf[:])
	return ctx.Err()
}

func (w *watcher) close() {
	if w.f != nil {
		w.f.Close()
	}
}

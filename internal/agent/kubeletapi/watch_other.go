//go:build !linux

package kubeletapi

import (
	"context"
	"time"
)

// watcher wakes a log follower by polling: inotify is Linux's.
type watcher struct{}

const pollPeriod = 250 * time.Millisecond

func newWatcher(string) *watcher { return &watcher{} }

// wait returns after at most d, or with ctx's error when ctx ends.
func (w *watcher) wait(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(min(d, pollPeriod))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (w *watcher) close() {}

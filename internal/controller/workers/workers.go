// Package workers runs a controller's work queue the sample-controller
// way: wait for the informers, then workers that take keys and sync them,
// retrying failures through the queue's rate limiter, until ctx ends.
package workers

import (
	"context"
	"log/slog"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// Sync brings the object named by key in line with its spec.
type Sync func(ctx context.Context, key string) error

// Run waits for synced, then runs n workers on q until ctx ends. what
// names the work in logs.
func Run(ctx context.Context, q workqueue.TypedRateLimitingInterface[string], synced []cache.InformerSynced, n int, syncKey Sync, log *slog.Logger, what string) {
	defer q.ShutDown()
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return
	}
	go func() { <-ctx.Done(); q.ShutDown() }()
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { Drain(ctx, q, syncKey, log, what) })
	}
	wg.Wait()
}

// Drain syncs q's keys on the calling goroutine until q shuts down. The
// queue never hands one key to two workers at once.
func Drain(ctx context.Context, q workqueue.TypedRateLimitingInterface[string], syncKey Sync, log *slog.Logger, what string) {
	for {
		key, quit := q.Get()
		if quit {
			return
		}
		if err := syncKey(ctx, key); err != nil {
			switch {
			case ctx.Err() != nil:
			case apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) || apierrors.IsNotFound(err):
				// A write based on a cache that was behind: the retry reads
				// the newer object.
				log.Debug(what, "key", key, "err", err)
			default:
				log.Warn(what, "key", key, "err", err)
			}
			q.AddRateLimited(key)
		} else {
			q.Forget(key)
		}
		q.Done(key)
	}
}

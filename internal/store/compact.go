package store

import (
	"context"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// compactKey records the last compaction so that several servers sharing one
// etcd compact once per interval between them, as kube-apiserver does.
const compactKey = "compact_rev_key"

// RunCompaction compacts etcd every interval to the revision seen one
// interval earlier, so that watchers have at least one interval to catch up.
func (s *Store) RunCompaction(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	var prev int64
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		cur, err := s.Revision(ctx)
		if err != nil {
			s.log.Warn("compaction: read revision", "err", err)
			continue
		}
		if prev > 0 {
			if err := s.Compact(ctx, prev); err != nil {
				s.log.Warn("compaction", "revision", prev, "err", err)
			}
		}
		prev = cur
	}
}

// Compact discards history before rev.
func (s *Store) Compact(ctx context.Context, rev int64) error {
	// Bump the compact key so the revision moves even on an idle cluster.
	if _, err := s.client.Put(ctx, compactKey, ""); err != nil {
		return err
	}
	_, err := s.client.Compact(ctx, rev, clientv3.WithCompactPhysical())
	if err != nil && !isCompactedErr(err) {
		return err
	}
	return nil
}

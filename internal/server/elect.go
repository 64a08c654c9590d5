package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// elected runs run only while this server holds the Lease kube-system/name,
// so that of several servers one schedules (or runs the controllers) at a
// time, as kube-scheduler and kube-controller-manager elect their leaders.
// The identity is stable for a data dir: a restarted server takes its own
// lease back at once instead of waiting for it to expire. Losing the lease
// ends the server with an error, as it ends kube-scheduler: another server
// is leading, and a restart starts clean.
func elected(ctx context.Context, client kubernetes.Interface, cfg Config, name string, log *slog.Logger, run func(ctx context.Context)) error {
	sum := sha256.Sum256([]byte(cfg.DataDir))
	identity := cfg.NodeName + "_" + hex.EncodeToString(sum[:4])
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: metav1.NamespaceSystem, Name: name},
		Client:     client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: identity},
	}
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   15 * time.Second,
		RenewDeadline:   10 * time.Second,
		RetryPeriod:     2 * time.Second,
		ReleaseOnCancel: true,
		Name:            name,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: run,
			OnStoppedLeading: func() {},
		},
	})
	if err != nil {
		return err
	}
	le.Run(ctx)
	if ctx.Err() != nil {
		return nil
	}
	log.Error("lost the lease", "lease", name)
	return fmt.Errorf("lost the %s lease", name)
}

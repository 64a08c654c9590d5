package job

import (
	"context"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

// This file is kube-controller-manager's ttl-after-finished controller: a
// Job with spec.ttlSecondsAfterFinished is deleted, with its pods, that
// many seconds after it finished.

// needsCleanup: the Job finished and has a TTL.
func needsCleanup(job *batchv1.Job) bool {
	return job.Spec.TTLSecondsAfterFinished != nil && isFinished(job)
}

func (c *Controller) enqueueTTL(job *batchv1.Job) {
	if job.DeletionTimestamp == nil && needsCleanup(job) {
		c.ttl.Add(keyOf(job))
	}
}

// syncTTL deletes the Job if its TTL has passed, or looks again when it will.
func (c *Controller) syncTTL(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	job, err := c.jobs.Jobs(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if expired, err := c.ttlExpired(job); err != nil || !expired {
		return err
	}
	// The cache may be behind a change of the TTL: decide on the Job as
	// the API has it now.
	fresh, err := c.client.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if expired, err := c.ttlExpired(fresh); err != nil || !expired {
		return err
	}
	// Foreground, as Kubernetes does: the Job stays, deleting, until its
	// pods are gone. The uid precondition spares a new Job of that name.
	policy := metav1.DeletePropagationForeground
	c.log.Info("deleting finished job after its ttl", "job", key)
	err = c.client.BatchV1().Jobs(ns).Delete(ctx, name, metav1.DeleteOptions{
		PropagationPolicy: &policy,
		Preconditions:     &metav1.Preconditions{UID: &fresh.UID},
	})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	return err
}

// ttlExpired reports whether the Job's TTL has passed; if it has yet to,
// the Job is queued again for when it will.
func (c *Controller) ttlExpired(job *batchv1.Job) (bool, error) {
	if job.DeletionTimestamp != nil || !needsCleanup(job) {
		return false, nil
	}
	cond, _ := finishedCondition(job)
	if cond.LastTransitionTime.IsZero() {
		return false, fmt.Errorf("unable to find the time when the Job %s/%s finished", job.Namespace, job.Name)
	}
	expireAt := cond.LastTransitionTime.Add(time.Duration(*job.Spec.TTLSecondsAfterFinished) * time.Second)
	left := expireAt.Sub(c.now())
	if left <= 0 {
		return true, nil
	}
	c.ttl.AddAfter(keyOf(job), left)
	return false, nil
}

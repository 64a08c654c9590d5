package job

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"github.com/skiff-sh/skiff/internal/controller/slowstart"
)

// syncState is what one sync knows of a Job and its pods.
type syncState struct {
	job    *batchv1.Job
	pods   []*corev1.Pod
	active []*corev1.Pod
	// finished is the condition the Job is to end with, once nothing runs.
	finished             *batchv1.JobCondition
	succeeded, failed    int32
	prevSucceededIndexes intervals
	succeededIndexes     intervals
	backoff              backoffRecord
	// expectedRemoved are pods whose finalizer this controller removed and
	// that the informer still shows with it.
	expectedRemoved    sets.Set[types.UID]
	uncountedSucceeded sets.Set[types.UID]
	uncountedFailed    sets.Set[types.UID]
	terminating, ready int32
}

// syncJob brings one Job a step closer to done: it counts the pods that
// finished, decides whether the Job has, creates or deletes pods, and
// writes the status. It is never run twice at once for one key.
func (c *Controller) syncJob(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil || ns == "" || name == "" {
		c.log.Warn("dropping malformed job key", "key", key)
		return nil
	}
	shared, err := c.jobs.Jobs(ns).Get(name)
	if apierrors.IsNotFound(err) {
		c.expectations.forget(key)
		c.finalizers.forget(key)
		c.backoff.remove(key)
		return nil
	}
	if err != nil {
		return err
	}
	if !isManagedHere(shared) {
		return nil
	}
	job := shared.DeepCopy()
	if isFinished(job) {
		c.backoff.remove(key)
		return nil
	}
	if m := job.Spec.CompletionMode; m != nil && *m != batchv1.NonIndexedCompletion && *m != batchv1.IndexedCompletion {
		c.recorder.Event(job, corev1.EventTypeWarning, "UnknownCompletionMode", "Skipped Job sync because completion mode is unknown")
		return nil
	}
	if job.Status.UncountedTerminatedPods == nil {
		job.Status.UncountedTerminatedPods = &batchv1.UncountedTerminatedPods{}
	}
	now := c.now()
	// Checked before listing pods: a pod the informer shows after this
	// check is then at worst not counted until the next sync.
	satisfied := c.expectations.satisfied(key, now)
	pods, err := c.podsForJob(ctx, job)
	if err != nil {
		return err
	}
	s := &syncState{
		job: job, pods: pods, active: activePods(pods),
		expectedRemoved:    c.finalizers.expected(key),
		uncountedSucceeded: sets.New(job.Status.UncountedTerminatedPods.Succeeded...),
		uncountedFailed:    sets.New(job.Status.UncountedTerminatedPods.Failed...),
		terminating:        int32(len(terminatingPods(pods))),
	}
	s.ready = countReady(s.active)
	active := int32(len(s.active))
	newSucceeded, newFailed := newFinishedPods(s)
	s.succeeded = job.Status.Succeeded + int32(len(newSucceeded)) + int32(s.uncountedSucceeded.Len())
	s.failed = job.Status.Failed + int32(countedFailures(job, newFailed)) + int32(s.uncountedFailed.Len())

	if job.Status.StartTime == nil && !suspended(job) {
		t := metav1.NewTime(now)
		job.Status.StartTime = &t
	}
	s.backoff = c.backoff.next(key, newSucceeded, newFailed)

	// Once SuccessCriteriaMet is written the Job succeeded, whatever fails
	// after; likewise FailureTarget.
	s.finished = trueCondition(job, batchv1.JobSuccessCriteriaMet)
	if s.finished == nil {
		if target := trueCondition(job, batchv1.JobFailureTarget); target != nil {
			s.finished = newCondition(batchv1.JobFailed, corev1.ConditionTrue, target.Reason, target.Message, now)
		} else if msg := failJobMessage(job, pods); msg != nil {
			s.finished = newCondition(batchv1.JobFailureTarget, corev1.ConditionTrue, batchv1.JobReasonPodFailurePolicy, *msg, now)
		}
	}
	if s.finished == nil {
		switch {
		case s.failed > *job.Spec.BackoffLimit || pastBackoffLimitOnFailure(job, pods):
			s.finished = newCondition(batchv1.JobFailureTarget, corev1.ConditionTrue, batchv1.JobReasonBackoffLimitExceeded,
				"Job has reached the specified backoff limit", now)
		case pastActiveDeadline(job, now):
			s.finished = newCondition(batchv1.JobFailureTarget, corev1.ConditionTrue, batchv1.JobReasonDeadlineExceeded,
				"Job was active longer than specified deadline", now)
		case job.Spec.ActiveDeadlineSeconds != nil && !suspended(job):
			left := time.Duration(*job.Spec.ActiveDeadlineSeconds)*time.Second - now.Sub(job.Status.StartTime.Time)
			c.queue.AddAfter(key, left)
		}
	}
	if isIndexed(job) {
		s.prevSucceededIndexes, s.succeededIndexes = succeededIndexes(job, pods)
		s.succeeded = int32(s.succeededIndexes.total())
		if s.finished == nil {
			if msg, ok := matchSuccessPolicy(job.Spec.SuccessPolicy, *job.Spec.Completions, s.succeededIndexes); ok {
				s.finished = newCondition(batchv1.JobSuccessCriteriaMet, corev1.ConditionTrue, batchv1.JobReasonSuccessPolicy, msg, now)
			}
		}
	}

	var manageErr error
	suspendChanged := false
	if s.finished != nil {
		deletedReady, deleted, err := c.deleteActivePods(ctx, job, s.active)
		if deleted != active || !satisfied {
			// Pods may be left, or not yet in the cache: not finished yet.
			s.finished = nil
		}
		active -= deleted
		s.terminating += deleted
		s.ready -= deletedReady
		manageErr = err
	} else {
		managed := false
		if satisfied && job.DeletionTimestamp == nil {
			active, manageErr = c.manageJob(ctx, job, s)
			managed = true
		}
		var complete bool
		if job.Spec.Completions == nil {
			// Without completions the first success ends the Job, once
			// the pods still running have finished.
			complete = s.succeeded > 0 && active == 0
		} else {
			complete = s.succeeded >= *job.Spec.Completions && active == 0
		}
		switch {
		case complete:
			s.finished = newCondition(batchv1.JobSuccessCriteriaMet, corev1.ConditionTrue, batchv1.JobReasonCompletionsReached,
				"Reached expected number of succeeded pods", now)
		case managed && suspended(job):
			var changed bool
			job.Status.Conditions, changed = ensureCondition(job.Status.Conditions, batchv1.JobSuspended, corev1.ConditionTrue, "JobSuspended", "Job suspended", now)
			if changed {
				suspendChanged = true
				c.recorder.Event(job, corev1.EventTypeNormal, "Suspended", "Job suspended")
			}
		case managed:
			var changed bool
			job.Status.Conditions, changed = ensureCondition(job.Status.Conditions, batchv1.JobSuspended, corev1.ConditionFalse, "JobResumed", "Job resumed", now)
			if changed {
				suspendChanged = true
				c.recorder.Event(job, corev1.EventTypeNormal, "Resumed", "Job resumed")
				// activeDeadlineSeconds counts the time the Job has been
				// running without a break.
				t := metav1.NewTime(now)
				job.Status.StartTime = &t
			}
		}
	}

	needsUpdate := suspendChanged || active != job.Status.Active ||
		!ptr.Equal(&s.ready, job.Status.Ready) || !ptr.Equal(&s.terminating, job.Status.Terminating)
	job.Status.Active = active
	job.Status.Ready = ptr.To(s.ready)
	job.Status.Terminating = ptr.To(s.terminating)
	if err := c.trackStatus(ctx, s, needsUpdate); err != nil {
		return fmt.Errorf("tracking status: %w", err)
	}
	return manageErr
}

// manageJob creates or deletes pods so that the right number runs, and
// returns how many are active then.
func (c *Controller) manageJob(ctx context.Context, job *batchv1.Job, s *syncState) (int32, error) {
	key := keyOf(job)
	now := c.now()
	active := int32(len(s.active))
	if suspended(job) {
		rm := podsForRemoval(job, s.active, len(s.active))
		c.expectations.expect(key, 0, len(rm), now)
		removedReady, removed, err := c.deleteJobPods(ctx, job, key, rm)
		s.terminating += removed
		s.ready -= removedReady
		return active - removed, err
	}

	parallelism := *job.Spec.Parallelism
	var want int32
	if job.Spec.Completions == nil {
		// Until one pod succeeds, run parallelism of them; after, leave
		// running what runs.
		want = parallelism
		if s.succeeded > 0 {
			want = active
		}
	} else {
		want = max(min(*job.Spec.Completions-s.succeeded, parallelism), 0)
	}

	rm := podsForRemoval(job, s.active, int(max(active-want, 0)))
	if len(rm) > maxPodChangesPerSync {
		rm = rm[:maxPodChangesPerSync]
	}
	if len(rm) > 0 {
		// One sync either deletes or creates; deleting comes first.
		c.expectations.expect(key, 0, len(rm), now)
		removedReady, removed, err := c.deleteJobPods(ctx, job, key, rm)
		s.terminating += removed
		s.ready -= removedReady
		return active - removed, err
	}

	var terminating int32
	if onlyReplaceFailedPods(job) {
		terminating = s.terminating
	}
	diff := want - terminating - active
	if diff <= 0 {
		return active, nil
	}
	if wait := s.backoff.remaining(now); wait > 0 {
		// Kubernetes returns 0 here, reporting no active pods while some
		// run; the pods that run are what status.active counts.
		c.queue.AddAfter(key, max(wait, syncBatchPeriod))
		return active, nil
	}
	diff = min(diff, maxPodChangesPerSync)
	var indexes []int
	if isIndexed(job) {
		indexes = pendingIndexes(s, int(diff), int(*job.Spec.Completions))
		diff = int32(len(indexes))
		if diff == 0 {
			return active, nil
		}
	}

	c.expectations.expect(key, int(diff), 0, now)
	tmpl := job.Spec.Template.DeepCopy()
	if isIndexed(job) {
		addCompletionIndexEnv(tmpl)
	}
	if !slices.Contains(tmpl.Finalizers, batchv1.JobTrackingFinalizer) {
		tmpl.Finalizers = append(tmpl.Finalizers, batchv1.JobTrackingFinalizer)
	}
	var failed atomic.Int32
	tried, createErr := slowstart.Run(int(diff), slowStartBatch, func(i int) error {
		t, generateName := tmpl, ""
		if len(indexes) > 0 {
			t, generateName = indexedTemplate(tmpl, job, indexes[i]), indexedGenerateName(job.Name, indexes[i])
		}
		err := c.createPod(ctx, job, podFromTemplate(job, t, generateName))
		if err == nil {
			return nil
		}
		// No pod for the informer to show.
		c.expectations.observed(key, 1, 0)
		failed.Add(1)
		if apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
			return nil
		}
		return err
	})
	// The rest wait for the next sync.
	untried := int(diff) - tried
	c.expectations.observed(key, untried, 0)
	active += diff - failed.Load() - int32(untried)
	return active, createErr
}

// deleteJobPods removes the tracking finalizer of each pod (it is not
// counted as finished) and deletes it. It returns how many ready pods and
// how many pods in all it deleted.
func (c *Controller) deleteJobPods(ctx context.Context, job *batchv1.Job, key string, pods []*corev1.Pod) (int32, int32, error) {
	var deleted, deletedReady atomic.Int32
	errs := make(chan error, len(pods))
	var wg sync.WaitGroup
	for _, p := range pods {
		wg.Go(func() {
			err := c.removeFinalizer(ctx, p)
			if err == nil {
				err = c.deletePod(ctx, job, p)
			}
			if err != nil {
				// No deletion for the informer to show.
				c.expectations.observed(key, 0, 1)
				if !apierrors.IsNotFound(err) {
					errs <- fmt.Errorf("delete pod %s: %w", p.Name, err)
					return
				}
			}
			deleted.Add(1)
			if podReady(p) {
				deletedReady.Add(1)
			}
		})
	}
	wg.Wait()
	return deletedReady.Load(), deleted.Load(), firstError(errs)
}

// deleteActivePods deletes the pods of a Job that has finished, keeping
// their finalizers: trackStatus counts them and removes those.
func (c *Controller) deleteActivePods(ctx context.Context, job *batchv1.Job, pods []*corev1.Pod) (int32, int32, error) {
	var deleted, deletedReady atomic.Int32
	errs := make(chan error, len(pods))
	var wg sync.WaitGroup
	for _, p := range pods {
		wg.Go(func() {
			if err := c.deletePod(ctx, job, p); err != nil && !apierrors.IsNotFound(err) {
				errs <- fmt.Errorf("delete pod %s: %w", p.Name, err)
				return
			}
			deleted.Add(1)
			if podReady(p) {
				deletedReady.Add(1)
			}
		})
	}
	wg.Wait()
	return deletedReady.Load(), deleted.Load(), firstError(errs)
}

func firstError(errs chan error) error {
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

// trackStatus counts finished pods in the Job's status without ever
// counting one twice or losing one:
//
//  1. finished pods that still have the tracking finalizer are added to
//     status.uncountedTerminatedPods (an Indexed Job's succeeded ones to
//     completedIndexes), and the status written;
//  2. their finalizers are removed;
//  3. the pods whose finalizer is gone move from uncountedTerminatedPods to
//     the succeeded and failed counters;
//  4. a Job with nothing left uncounted or terminating gets its final
//     condition, and the status is written.
//
// A crash between the steps leaves the pod listed once: in uncounted (with
// or without its finalizer) or in a counter (without it).
func (c *Controller) trackStatus(ctx context.Context, s *syncState, needsFlush bool) error {
	job := s.job
	indexed := isIndexed(job)
	pods := s.pods
	if indexed {
		// So that new indexes are found in order.
		pods = slices.Clone(pods)
		slices.SortStableFunc(pods, func(a, b *corev1.Pod) int { return completionIndex(a) - completionIndex(b) })
	}
	withFinalizer := sets.New[types.UID]()
	for _, p := range pods {
		if hasTrackingFinalizer(p) && !s.expectedRemoved.Has(p.UID) {
			withFinalizer.Insert(p.UID)
		}
	}
	if countUncounted(&job.Status, withFinalizer) {
		needsFlush = true
	}
	uncounted := job.Status.UncountedTerminatedPods
	var toRemove []*corev1.Pod
	var newIndexes []int
	reachedMax := false
	for _, p := range pods {
		if !hasTrackingFinalizer(p) || s.expectedRemoved.Has(p.UID) {
			continue // counted in an earlier sync
		}
		failed := isPodFailed(p, job)
		if !canRemoveFinalizer(s, p, failed) {
			continue
		}
		toRemove = append(toRemove, p)
		switch {
		case p.Status.Phase == corev1.PodSucceeded && !s.uncountedFailed.Has(p.UID):
			if indexed {
				// The index alone says whether this success was counted.
				if ix, ok := validIndex(job, p); ok && !s.prevSucceededIndexes.has(ix) {
					newIndexes = append(newIndexes, ix)
					needsFlush = true
				}
			} else if !s.uncountedSucceeded.Has(p.UID) {
				uncounted.Succeeded = append(uncounted.Succeeded, p.UID)
				needsFlush = true
			}
		case failed || s.finished != nil && s.finished.Type != batchv1.JobSuccessCriteriaMet:
			// A Job that failed counts every pod not finished as failed.
			_, validIx := validIndex(job, p)
			if !s.uncountedFailed.Has(p.UID) && (!indexed || validIx) {
				counts := true
				if job.Spec.PodFailurePolicy != nil {
					_, counts, _ = matchPodFailurePolicy(job.Spec.PodFailurePolicy, p)
				}
				if counts {
					uncounted.Failed = append(uncounted.Failed, p.UID)
					needsFlush = true
				}
			}
		}
		if len(newIndexes)+len(uncounted.Succeeded)+len(uncounted.Failed) >= maxUncountedPods {
			// The rest wait for the next sync, which the status and pod
			// updates of this one bring.
			reachedMax = true
			break
		}
	}
	if indexed {
		s.succeededIndexes = s.succeededIndexes.withIndexes(newIndexes)
		completed := s.succeededIndexes.String()
		if completed != job.Status.CompletedIndexes {
			needsFlush = true
		}
		job.Status.Succeeded = int32(s.succeededIndexes.total())
		job.Status.CompletedIndexes = completed
	}
	now := c.now()
	if s.finished != nil && s.finished.Type == batchv1.JobFailureTarget {
		// Written before any finalizer goes, so that the reason survives a
		// crash; Failed follows when nothing is left running.
		job.Status.Conditions = append(job.Status.Conditions, *s.finished)
		needsFlush = true
		s.finished = newCondition(batchv1.JobFailed, corev1.ConditionTrue, s.finished.Reason, s.finished.Message, now)
	}
	if s.finished != nil && s.finished.Type == batchv1.JobSuccessCriteriaMet {
		if trueCondition(job, batchv1.JobSuccessCriteriaMet) == nil {
			job.Status.Conditions = append(job.Status.Conditions, *s.finished)
			needsFlush = true
		}
		s.finished = newCondition(batchv1.JobComplete, corev1.ConditionTrue, s.finished.Reason, s.finished.Message, now)
	}
	needsFlush, err := c.flushAndRemoveFinalizers(ctx, s, toRemove, withFinalizer, needsFlush)
	if err != nil {
		return err
	}
	finished := !reachedMax && c.enactFinished(s)
	if finished {
		needsFlush = true
	}
	if needsFlush {
		if _, err := c.updateStatus(ctx, s.job); err != nil {
			return fmt.Errorf("removing uncounted pods from status: %w", err)
		}
		if finished {
			c.recordFinished(s.job, s.finished)
		}
	}
	return nil
}

// flushAndRemoveFinalizers writes the status if needed (steps 1 and 3 of
// trackStatus), removes the pods' finalizers (step 2) and counts the pods
// whose finalizer went. It returns whether the status still needs writing.
func (c *Controller) flushAndRemoveFinalizers(ctx context.Context, s *syncState, toRemove []*corev1.Pod, withFinalizer sets.Set[types.UID], needsFlush bool) (bool, error) {
	if needsFlush {
		updated, err := c.updateStatus(ctx, s.job)
		if err != nil {
			return needsFlush, fmt.Errorf("adding uncounted pods to status: %w", err)
		}
		s.job = updated
		// The failures are in the status now: the back-off counts them.
		c.backoff.update(s.backoff)
		needsFlush = false
	}
	var rmErr error
	if len(toRemove) > 0 {
		var removed []bool
		removed, rmErr = c.removeFinalizers(ctx, keyOf(s.job), toRemove)
		for i, p := range toRemove {
			if removed[i] {
				withFinalizer.Delete(p.UID)
			}
		}
	}
	if countUncounted(&s.job.Status, withFinalizer) {
		needsFlush = true
	}
	if rmErr != nil && needsFlush {
		// Keep what progress was made.
		if _, err := c.updateStatus(ctx, s.job); err != nil {
			return needsFlush, fmt.Errorf("removing uncounted pods from status: %w", err)
		}
	}
	return needsFlush, rmErr
}

// removeFinalizers removes the tracking finalizer of each pod, reporting
// which removals succeeded (a pod already gone counts as one).
func (c *Controller) removeFinalizers(ctx context.Context, key string, pods []*corev1.Pod) ([]bool, error) {
	uids := make([]types.UID, len(pods))
	for i, p := range pods {
		uids[i] = p.UID
	}
	c.finalizers.expectRemoved(key, uids...)
	removed := make([]bool, len(pods))
	errs := make(chan error, len(pods))
	var wg sync.WaitGroup
	for i, p := range pods {
		wg.Go(func() {
			err := c.removeFinalizer(ctx, p)
			if err != nil {
				// No update for the informer to show.
				c.finalizers.observed(key, p.UID)
				if !apierrors.IsNotFound(err) {
					errs <- fmt.Errorf("remove tracking finalizer of %s: %w", p.Name, err)
					return
				}
			}
			removed[i] = true
		})
	}
	wg.Wait()
	return removed, firstError(errs)
}

// countUncounted moves the pods of uncountedTerminatedPods that no longer
// have their finalizer to the succeeded and failed counters, reporting
// whether any moved.
func countUncounted(st *batchv1.JobStatus, withFinalizer sets.Set[types.UID]) bool {
	u := st.UncountedTerminatedPods
	keep := func(uids []types.UID) []types.UID {
		var out []types.UID
		for _, uid := range uids {
			if withFinalizer.Has(uid) {
				out = append(out, uid)
			}
		}
		return out
	}
	changed := false
	if left := keep(u.Succeeded); len(left) != len(u.Succeeded) {
		st.Succeeded += int32(len(u.Succeeded) - len(left))
		u.Succeeded, changed = left, true
	}
	if left := keep(u.Failed); len(left) != len(u.Failed) {
		st.Failed += int32(len(u.Failed) - len(left))
		u.Failed, changed = left, true
	}
	return changed
}

// canRemoveFinalizer: a pod is counted (and loses its finalizer) once it
// succeeded or failed, or whatever its state once the Job is being deleted
// or has finished.
func canRemoveFinalizer(s *syncState, p *corev1.Pod, failed bool) bool {
	return s.job.DeletionTimestamp != nil || s.finished != nil || p.Status.Phase == corev1.PodSucceeded || failed
}

// enactFinished gives the Job its final condition once every pod is
// counted and none is terminating.
func (c *Controller) enactFinished(s *syncState) bool {
	if s.finished == nil {
		return false
	}
	job := s.job
	if u := job.Status.UncountedTerminatedPods; u != nil && len(u.Succeeded)+len(u.Failed) > 0 {
		return false
	}
	if s.terminating > 0 {
		return false
	}
	job.Status.Conditions, _ = ensureCondition(job.Status.Conditions, s.finished.Type, s.finished.Status, s.finished.Reason, s.finished.Message, c.now())
	if s.finished.Type == batchv1.JobComplete {
		t := s.finished.LastTransitionTime
		job.Status.CompletionTime = &t
	}
	return true
}

func (c *Controller) recordFinished(job *batchv1.Job, cond *batchv1.JobCondition) {
	if cond.Type == batchv1.JobComplete {
		if job.Spec.Completions != nil && job.Status.Succeeded > *job.Spec.Completions {
			c.recorder.Event(job, corev1.EventTypeWarning, "TooManySucceededPods", "Too many succeeded pods running after completion count reached")
		}
		c.recorder.Event(job, corev1.EventTypeNormal, "Completed", "Job completed")
		c.log.Info("job completed", "job", keyOf(job), "succeeded", job.Status.Succeeded)
		return
	}
	c.recorder.Event(job, corev1.EventTypeWarning, cond.Reason, cond.Message)
	c.log.Info("job failed", "job", keyOf(job), "reason", cond.Reason, "failed", job.Status.Failed)
}

func (c *Controller) updateStatus(ctx context.Context, job *batchv1.Job) (*batchv1.Job, error) {
	return c.client.BatchV1().Jobs(job.Namespace).UpdateStatus(ctx, job, metav1.UpdateOptions{})
}

// newFinishedPods are the pods that finished and are in no count yet.
func newFinishedPods(s *syncState) (succeeded, failed []*corev1.Pod) {
	for _, p := range s.pods {
		if !hasTrackingFinalizer(p) || s.expectedRemoved.Has(p.UID) {
			continue
		}
		if isIndexed(s.job) {
			if _, ok := validIndex(s.job, p); !ok {
				continue
			}
		}
		if p.Status.Phase == corev1.PodSucceeded && !s.uncountedSucceeded.Has(p.UID) {
			succeeded = append(succeeded, p)
		}
		if isPodFailed(p, s.job) && !s.uncountedFailed.Has(p.UID) {
			failed = append(failed, p)
		}
	}
	return succeeded, failed
}

// pastBackoffLimitOnFailure: with restartPolicy OnFailure pods restart in
// place, so their restarts count as the failures.
func pastBackoffLimitOnFailure(job *batchv1.Job, pods []*corev1.Pod) bool {
	if job.Spec.Template.Spec.RestartPolicy != corev1.RestartPolicyOnFailure {
		return false
	}
	var restarts int32
	for _, p := range pods {
		if p.Status.Phase != corev1.PodRunning && p.Status.Phase != corev1.PodPending {
			continue
		}
		for _, cs := range p.Status.InitContainerStatuses {
			restarts += cs.RestartCount
		}
		for _, cs := range p.Status.ContainerStatuses {
			restarts += cs.RestartCount
		}
	}
	if *job.Spec.BackoffLimit == 0 {
		return restarts > 0
	}
	return restarts >= *job.Spec.BackoffLimit
}

func pastActiveDeadline(job *batchv1.Job, now time.Time) bool {
	if job.Spec.ActiveDeadlineSeconds == nil || job.Status.StartTime == nil || suspended(job) {
		return false
	}
	return now.Sub(job.Status.StartTime.Time) >= time.Duration(*job.Spec.ActiveDeadlineSeconds)*time.Second
}

func suspended(job *batchv1.Job) bool { return job.Spec.Suspend != nil && *job.Spec.Suspend }

func isIndexed(job *batchv1.Job) bool {
	return job.Spec.CompletionMode != nil && *job.Spec.CompletionMode == batchv1.IndexedCompletion
}

// isFinished: the Job has its Complete or Failed condition.
func isFinished(job *batchv1.Job) bool {
	_, ok := finishedCondition(job)
	return ok
}

func finishedCondition(job *batchv1.Job) (*batchv1.JobCondition, bool) {
	for i, c := range job.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return &job.Status.Conditions[i], true
		}
	}
	return nil, false
}

// trueCondition returns the Job's condition of type t if it is True.
func trueCondition(job *batchv1.Job, t batchv1.JobConditionType) *batchv1.JobCondition {
	for i, c := range job.Status.Conditions {
		if c.Type == t && c.Status == corev1.ConditionTrue {
			return &job.Status.Conditions[i]
		}
	}
	return nil
}

func newCondition(t batchv1.JobConditionType, status corev1.ConditionStatus, reason, message string, now time.Time) *batchv1.JobCondition {
	return &batchv1.JobCondition{Type: t, Status: status, Reason: reason, Message: message,
		LastProbeTime: metav1.NewTime(now), LastTransitionTime: metav1.NewTime(now)}
}

// ensureCondition sets the condition of type t, reporting whether the list
// changed. A condition that would be added as False is not added: going
// from nothing to False says nothing.
func ensureCondition(list []batchv1.JobCondition, t batchv1.JobConditionType, status corev1.ConditionStatus, reason, message string, now time.Time) ([]batchv1.JobCondition, bool) {
	for i := range list {
		if list[i].Type != t {
			continue
		}
		if list[i].Status != status || list[i].Reason != reason || list[i].Message != message {
			list[i] = *newCondition(t, status, reason, message, now)
			return list, true
		}
		return list, false
	}
	if status == corev1.ConditionFalse {
		return list, false
	}
	return append(list, *newCondition(t, status, reason, message, now)), true
}

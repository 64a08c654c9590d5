// Package job runs Jobs' pods to completion, as kube-controller-manager's
// job controller does. For each Job it keeps up to parallelism pods running
// until completions of them have succeeded (or, for an Indexed Job, one pod
// of each index 0..completions-1 has), replacing failed ones after a
// back-off until backoffLimit failures or activeDeadlineSeconds end it.
//
// Pods are counted once, through the batch.kubernetes.io/job-tracking
// finalizer every pod is created with: a finished pod is first listed in
// status.uncountedTerminatedPods, then loses its finalizer, then moves to
// the succeeded or failed counter. A finished Job first gets the interim
// SuccessCriteriaMet or FailureTarget condition, and Complete or Failed only
// once no pod of it is left running or terminating.
//
// The package also deletes finished Jobs whose ttlSecondsAfterFinished has
// passed (kube-controller-manager's ttl-after-finished controller).
package job

import (
	"context"
	"log/slog"
	"reflect"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	"github.com/skiff-sh/skiff/internal/controller/workers"
)

// controllerKind is what the Job's pods name as their controller.
var controllerKind = batchv1.SchemeGroupVersion.WithKind("Job")

// managedBy is the spec.managedBy value this controller answers to; a Job
// naming another controller is left to it.
const managedBy = "kubernetes.io/job-controller"

const (
	// workers is kube-controller-manager's default --concurrent-job-syncs.
	workerCount = 5
	// syncBatchPeriod gathers the pod events of a Job into one sync.
	syncBatchPeriod = time.Second
	apiBackoff      = time.Second
	maxAPIBackoff   = time.Minute
	// maxUncountedPods keeps status.uncountedTerminatedPods small (about
	// 20 KB) and a sync of a big Job from starving the others.
	maxUncountedPods = 500
	// maxPodChangesPerSync caps the creations or deletions of one sync.
	maxPodChangesPerSync = 500
	// slowStartBatch is the first batch of a burst of creations; each
	// batch that succeeds doubles the next, so that a Job whose pods all
	// fail to create (quota, say) stops after a few.
	slowStartBatch = 1
)

// Controller is the job controller.
type Controller struct {
	client   kubernetes.Interface
	jobs     batchlisters.JobLister
	pods     corelisters.PodLister
	synced   []cache.InformerSynced
	recorder record.EventRecorder
	log      *slog.Logger
	// now is the clock; tests set it.
	now func() time.Time

	queue workqueue.TypedRateLimitingInterface[string]
	// orphans holds pods that keep the tracking finalizer but whose Job is
	// gone, finished, or no longer their controller.
	orphans workqueue.TypedRateLimitingInterface[string]
	// ttl holds finished Jobs with ttlSecondsAfterFinished.
	ttl workqueue.TypedRateLimitingInterface[string]

	expectations *expectations
	finalizers   *finalizerExpectations
	backoff      *backoffStore
}

// New makes the controller on factory's informers; start the factory, then Run.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder, log *slog.Logger) *Controller {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	jobs, pods := factory.Batch().V1().Jobs(), factory.Core().V1().Pods()
	queue := func(name string) workqueue.TypedRateLimitingInterface[string] {
		return workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](apiBackoff, maxAPIBackoff),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: name})
	}
	c := &Controller{
		client: client, jobs: jobs.Lister(), pods: pods.Lister(), recorder: recorder, log: log, now: time.Now,
		synced:       []cache.InformerSynced{jobs.Informer().HasSynced, pods.Informer().HasSynced},
		queue:        queue("job"),
		orphans:      queue("job_orphan_pod"),
		ttl:          workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](), workqueue.TypedRateLimitingQueueConfig[string]{Name: "ttl_jobs_to_delete"}),
		expectations: newExpectations(),
		finalizers:   newFinalizerExpectations(),
		backoff:      newBackoffStore(),
	}
	jobs.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.addJob,
		UpdateFunc: c.updateJob,
		DeleteFunc: c.deleteJob,
	})
	pods.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.addPod,
		UpdateFunc: c.updatePod,
		DeleteFunc: func(obj any) { c.podGone(obj, true) },
	})
	return c
}

// Run syncs Jobs until ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	defer c.queue.ShutDown()
	defer c.orphans.ShutDown()
	defer c.ttl.ShutDown()
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		return nil
	}
	c.log.Info("starting job controller")
	var wg sync.WaitGroup
	for range workerCount {
		wg.Go(func() { workers.Drain(ctx, c.queue, c.syncJob, c.log, "sync job") })
	}
	wg.Go(func() {
		workers.Drain(ctx, c.orphans, c.syncOrphanPod, c.log, "remove tracking finalizer of orphan pod")
	})
	wg.Go(func() { workers.Drain(ctx, c.ttl, c.syncTTL, c.log, "clean up finished job") })
	<-ctx.Done()
	c.queue.ShutDown()
	c.orphans.ShutDown()
	c.ttl.ShutDown()
	wg.Wait()
	return nil
}

// drain runs sync on the queue's keys until it shuts down, requeuing with
// back-off the keys whose sync fails.
func keyOf(obj metav1.Object) string {
	if obj.GetNamespace() == "" {
		return obj.GetName()
	}
	return obj.GetNamespace() + "/" + obj.GetName()
}

// enqueue syncs the Job after delay: at once for changes of the Job, after
// syncBatchPeriod for pod events, so that a burst of them makes one sync.
func (c *Controller) enqueue(job *batchv1.Job, delay time.Duration) {
	c.queue.AddAfter(keyOf(job), delay)
}

func jobFromObj(obj any) *batchv1.Job {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	job, _ := obj.(*batchv1.Job)
	return job
}

func podFromObj(obj any) *corev1.Pod {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	pod, _ := obj.(*corev1.Pod)
	return pod
}

func (c *Controller) addJob(obj any) {
	job := jobFromObj(obj)
	if job == nil {
		return
	}
	c.enqueue(job, 0)
	c.enqueueTTL(job)
}

func (c *Controller) updateJob(oldObj, newObj any) {
	old, cur := jobFromObj(oldObj), jobFromObj(newObj)
	if old == nil || cur == nil {
		return
	}
	if cur.Generation == old.Generation {
		// A status write, typically after pod events: batch it.
		c.enqueue(cur, syncBatchPeriod)
	} else {
		c.enqueue(cur, 0)
	}
	// Pods keep their finalizers until counted; a finished Job counted
	// them all, so any left are removed (a backstop).
	if isFinished(cur) {
		c.cleanupPodFinalizers(cur)
	}
	c.enqueueTTL(cur)
	// A changed activeDeadlineSeconds needs a sync when it passes.
	if cur.Status.StartTime != nil && cur.Spec.ActiveDeadlineSeconds != nil &&
		(old.Spec.ActiveDeadlineSeconds == nil || *old.Spec.ActiveDeadlineSeconds != *cur.Spec.ActiveDeadlineSeconds) {
		total := time.Duration(*cur.Spec.ActiveDeadlineSeconds) * time.Second
		c.queue.AddAfter(keyOf(cur), total-c.now().Sub(cur.Status.StartTime.Time))
	}
}

func (c *Controller) deleteJob(obj any) {
	job := jobFromObj(obj)
	if job == nil {
		return
	}
	c.enqueue(job, 0)
	c.cleanupPodFinalizers(job)
}

// cleanupPodFinalizers queues the Job's pods that still have the tracking
// finalizer for its removal.
func (c *Controller) cleanupPodFinalizers(job *batchv1.Job) {
	selector, err := metav1.LabelSelectorAsSelector(job.Spec.Selector)
	if err != nil {
		return
	}
	pods, _ := c.pods.Pods(job.Namespace).List(selector)
	for _, p := range pods {
		if metav1.IsControlledBy(p, job) && hasTrackingFinalizer(p) {
			c.orphans.Add(keyOf(p))
		}
	}
}

// jobOf returns the Job a controller reference names, if it still is that Job.
func (c *Controller) jobOf(namespace string, ref *metav1.OwnerReference) *batchv1.Job {
	if ref == nil || ref.Kind != controllerKind.Kind {
		return nil
	}
	job, err := c.jobs.Jobs(namespace).Get(ref.Name)
	if err != nil || job.UID != ref.UID {
		return nil
	}
	return job
}

// selectingJobs are the Jobs whose selector matches an orphan pod: one may
// adopt it.
func (c *Controller) selectingJobs(pod *corev1.Pod) []*batchv1.Job {
	jobs, err := c.jobs.GetPodJobs(pod)
	if err != nil {
		return nil
	}
	out := make([]*batchv1.Job, 0, len(jobs))
	for i := range jobs {
		out = append(out, &jobs[i])
	}
	return out
}

func (c *Controller) addPod(obj any) {
	pod := podFromObj(obj)
	if pod == nil {
		return
	}
	if pod.DeletionTimestamp != nil {
		// Seen for the first time already being deleted (after a restart,
		// say): not a creation this controller waits for.
		c.podGone(pod, false)
		return
	}
	if ref := metav1.GetControllerOf(pod); ref != nil {
		if job := c.jobOf(pod.Namespace, ref); job != nil {
			c.expectations.observed(keyOf(job), 1, 0)
			c.enqueue(job, syncBatchPeriod)
		}
		return
	}
	if hasTrackingFinalizer(pod) {
		c.orphans.Add(keyOf(pod))
	}
	for _, job := range c.selectingJobs(pod) {
		c.enqueue(job, syncBatchPeriod)
	}
}

func (c *Controller) updatePod(oldObj, newObj any) {
	old, cur := podFromObj(oldObj), podFromObj(newObj)
	if old == nil || cur == nil || cur.ResourceVersion == old.ResourceVersion {
		return
	}
	if cur.DeletionTimestamp != nil {
		// A graceful deletion has begun: a replacement need not wait for
		// the pod to be gone.
		c.podGone(cur, false)
		return
	}
	finalizerRemoved := !hasTrackingFinalizer(cur)
	curRef, oldRef := metav1.GetControllerOf(cur), metav1.GetControllerOf(old)
	refChanged := !reflect.DeepEqual(curRef, oldRef)
	if refChanged && oldRef != nil {
		if job := c.jobOf(old.Namespace, oldRef); job != nil {
			if finalizerRemoved {
				c.finalizers.observed(keyOf(job), cur.UID)
			}
			c.enqueue(job, syncBatchPeriod)
		}
	}
	if curRef != nil {
		if job := c.jobOf(cur.Namespace, curRef); job != nil {
			if finalizerRemoved {
				c.finalizers.observed(keyOf(job), cur.UID)
			}
			c.enqueue(job, syncBatchPeriod)
		}
		return
	}
	if hasTrackingFinalizer(cur) {
		c.orphans.Add(keyOf(cur))
	}
	if refChanged || !reflect.DeepEqual(cur.Labels, old.Labels) {
		for _, job := range c.selectingJobs(cur) {
			c.enqueue(job, syncBatchPeriod)
		}
	}
}

// podGone handles a pod deleted (final) or whose deletion began.
func (c *Controller) podGone(obj any, final bool) {
	pod := podFromObj(obj)
	if pod == nil {
		return
	}
	ref := metav1.GetControllerOf(pod)
	has := hasTrackingFinalizer(pod)
	job := c.jobOf(pod.Namespace, ref)
	if job == nil || isFinished(job) {
		// syncJob will not remove this pod's finalizer.
		if has {
			c.orphans.Add(keyOf(pod))
		}
		return
	}
	key := keyOf(job)
	c.expectations.observed(key, 0, 1)
	if final || !has {
		c.finalizers.observed(key, pod.UID)
	}
	c.enqueue(job, syncBatchPeriod)
}

// syncOrphanPod removes the tracking finalizer of a pod no unfinished Job
// of this controller counts.
func (c *Controller) syncOrphanPod(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	pod, err := c.pods.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if ref := metav1.GetControllerOf(pod); ref != nil {
		if ref.Kind != controllerKind.Kind || ref.APIVersion != batchv1.SchemeGroupVersion.String() {
			return nil // another kind of controller's pod
		}
		if job := c.jobOf(ns, ref); job != nil {
			if !isManagedHere(job) || !isFinished(job) {
				return nil
			}
		}
	}
	if err := c.removeFinalizer(ctx, pod); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	return nil
}

// isManagedHere reports whether spec.managedBy leaves the Job to this controller.
func isManagedHere(job *batchv1.Job) bool {
	return job.Spec.ManagedBy == nil || *job.Spec.ManagedBy == managedBy
}

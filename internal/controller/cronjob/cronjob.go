// Package cronjob creates Jobs on CronJobs' schedules, as
// kube-controller-manager's cronjob controller does. Each CronJob is synced
// when it or one of its Jobs changes, and again just after its next
// scheduled time: a sync creates the Job of the most recent unmet
// schedule time (named <cronjob>-<minutes since the epoch>, so that a time
// is never run twice), unless it is suspended, too late for
// startingDeadlineSeconds or barred by its concurrency policy; it keeps
// status.active, lastScheduleTime and lastSuccessfulTime, and deletes the
// oldest finished Jobs beyond the history limits. The Jobs themselves are
// run by the job controller.
package cronjob

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"

	"github.com/skiff-sh/skiff/internal/controller/workers"
)

// controllerKind is what the CronJob's Jobs name as their controller.
var controllerKind = batchv1.SchemeGroupVersion.WithKind("CronJob")

const (
	// workers is kube-controller-manager's default --concurrent-cron-job-syncs.
	workerCount = 5
	// nextScheduleDelta is added to each requeue so that a sync never
	// runs just before the time it is for (clocks drift a little).
	nextScheduleDelta = 100 * time.Millisecond
)

// Controller is the cronjob controller.
type Controller struct {
	client   kubernetes.Interface
	jobs     batchlisters.JobLister
	cronJobs batchlisters.CronJobLister
	synced   []cache.InformerSynced
	queue    workqueue.TypedRateLimitingInterface[string]
	recorder record.EventRecorder
	log      *slog.Logger
	// now is the clock; tests set it.
	now func() time.Time
}

// New makes the controller on factory's informers; start the factory, then Run.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder, log *slog.Logger) *Controller {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	jobs, cronJobs := factory.Batch().V1().Jobs(), factory.Batch().V1().CronJobs()
	c := &Controller{
		client: client, jobs: jobs.Lister(), cronJobs: cronJobs.Lister(), recorder: recorder, log: log, now: time.Now,
		synced: []cache.InformerSynced{jobs.Informer().HasSynced, cronJobs.Informer().HasSynced},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "cronjob"}),
	}
	jobs.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.addJob,
		UpdateFunc: c.updateJob,
		DeleteFunc: c.jobGone,
	})
	cronJobs.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueue,
		UpdateFunc: c.updateCronJob,
		DeleteFunc: c.enqueue,
	})
	return c
}

// Run syncs CronJobs until ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	workers.Run(ctx, c.queue, c.synced, workerCount, c.syncAndRequeue, c.log, "sync cronjob")
	return nil
}

// syncAndRequeue syncs and queues the CronJob again for its next time.
func (c *Controller) syncAndRequeue(ctx context.Context, key string) error {
	requeueAfter, err := c.sync(ctx, key)
	if err == nil && requeueAfter != nil {
		c.queue.AddAfter(key, *requeueAfter)
	}
	return err
}

func keyOf(obj any) (string, bool) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		return t.Key, true
	}
	m, ok := obj.(metav1.Object)
	if !ok {
		return "", false
	}
	return m.GetNamespace() + "/" + m.GetName(), true
}

func (c *Controller) enqueue(obj any) {
	if key, ok := keyOf(obj); ok {
		c.queue.Add(key)
	}
}

func (c *Controller) enqueueAfter(obj any, d time.Duration) {
	if key, ok := keyOf(obj); ok {
		c.queue.AddAfter(key, d)
	}
}

// updateCronJob requeues a CronJob whose schedule changed for its new next
// time, and any other changed CronJob at once.
func (c *Controller) updateCronJob(oldObj, newObj any) {
	old, okOld := oldObj.(*batchv1.CronJob)
	cur, okNew := newObj.(*batchv1.CronJob)
	if !okOld || !okNew {
		return
	}
	if old.Spec.Schedule != cur.Spec.Schedule || !ptr.Equal(old.Spec.TimeZone, cur.Spec.TimeZone) {
		// nil recorder: the sync will warn about the schedule, not this.
		sched, err := cron.ParseStandard(formatSchedule(cur, nil))
		if err != nil {
			c.log.Info("unparseable schedule for cronjob", "cronjob", cur.Namespace+"/"+cur.Name, "schedule", cur.Spec.Schedule, "err", err)
			c.recorder.Eventf(cur, corev1.EventTypeWarning, "UnParseableCronJobSchedule", "unparseable schedule for cronjob: %s", cur.Spec.Schedule)
			return
		}
		c.enqueueAfter(cur, *nextScheduleTimeDuration(cur, c.now(), sched))
		return
	}
	c.enqueue(cur)
}

// cronJobOf returns the CronJob a controller reference names, if it still
// is that CronJob.
func (c *Controller) cronJobOf(namespace string, ref *metav1.OwnerReference) *batchv1.CronJob {
	if ref == nil || ref.Kind != controllerKind.Kind {
		return nil
	}
	cj, err := c.cronJobs.CronJobs(namespace).Get(ref.Name)
	if err != nil || cj.UID != ref.UID {
		return nil
	}
	return cj
}

func (c *Controller) addJob(obj any) {
	job, ok := obj.(*batchv1.Job)
	if !ok {
		return
	}
	if job.DeletionTimestamp != nil {
		c.jobGone(job)
		return
	}
	if cj := c.cronJobOf(job.Namespace, metav1.GetControllerOf(job)); cj != nil {
		c.enqueue(cj)
	}
}

func (c *Controller) updateJob(oldObj, newObj any) {
	old, okOld := oldObj.(*batchv1.Job)
	cur, okNew := newObj.(*batchv1.Job)
	if !okOld || !okNew || cur.ResourceVersion == old.ResourceVersion {
		return
	}
	curRef, oldRef := metav1.GetControllerOf(cur), metav1.GetControllerOf(old)
	if !reflect.DeepEqual(curRef, oldRef) && oldRef != nil {
		if cj := c.cronJobOf(old.Namespace, oldRef); cj != nil {
			c.enqueue(cj)
		}
	}
	if cj := c.cronJobOf(cur.Namespace, curRef); cj != nil {
		c.enqueue(cj)
	}
}

func (c *Controller) jobGone(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	job, ok := obj.(*batchv1.Job)
	if !ok {
		return
	}
	if cj := c.cronJobOf(job.Namespace, metav1.GetControllerOf(job)); cj != nil {
		c.enqueue(cj)
	}
}

// sync reconciles one CronJob, returning when to look at it again.
func (c *Controller) sync(ctx context.Context, key string) (*time.Duration, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil, nil
	}
	cronJob, err := c.cronJobs.CronJobs(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	jobs, err := c.jobsOf(cronJob)
	if err != nil {
		return nil, err
	}
	// All changes are made to one copy and written once.
	cj := cronJob.DeepCopy()
	cleaned := c.cleanupFinishedJobs(ctx, cj, jobs)
	requeueAfter, synced, syncErr := c.syncCronJob(ctx, cj, jobs)
	if syncErr != nil {
		c.log.Info("reconcile cronjob", "cronjob", key, "err", syncErr)
	}
	if cleaned || synced {
		if _, err := c.client.BatchV1().CronJobs(ns).UpdateStatus(ctx, cj, metav1.UpdateOptions{}); err != nil {
			return nil, fmt.Errorf("update status: %w", err)
		}
	}
	if requeueAfter != nil {
		return requeueAfter, nil
	}
	// Not requeued: suspended, or a schedule that cannot run; a change of
	// the CronJob brings it back.
	return nil, syncErr
}

// jobsOf returns the Jobs the CronJob controls, those whose labels no
// longer match its template included.
func (c *Controller) jobsOf(cj *batchv1.CronJob) ([]*batchv1.Job, error) {
	all, err := c.jobs.Jobs(cj.Namespace).List(labels.Everything())
	if err != nil {
		return nil, err
	}
	var out []*batchv1.Job
	for _, j := range all {
		// Kubernetes matches the controller reference by name only; the
		// uid keeps a new CronJob of an old one's name from taking over
		// (and cleaning up) the old one's Jobs.
		if metav1.IsControlledBy(j, cj) {
			out = append(out, j)
		}
	}
	return out, nil
}

// syncCronJob reconciles the CronJob cj with its Jobs, changing cj's
// status in place. It returns when to sync again (nil: not until cj
// changes) and whether the status changed.
func (c *Controller) syncCronJob(ctx context.Context, cj *batchv1.CronJob, jobs []*batchv1.Job) (*time.Duration, bool, error) {
	now := c.now()
	updateStatus := false

	children := map[types.UID]bool{}
	for _, j := range jobs {
		children[j.UID] = true
		found := inActiveList(cj, j.UID)
		switch {
		case !found && !isFinished(j):
			// Made by us, maybe, with the status write lost; or the cache
			// is behind the status. Ask the API before warning.
			fresh, err := c.client.BatchV1().CronJobs(cj.Namespace).Get(ctx, cj.Name, metav1.GetOptions{})
			if err != nil {
				return nil, updateStatus, err
			}
			if inActiveList(fresh, j.UID) {
				*cj = *fresh
				continue
			}
			c.recorder.Eventf(cj, corev1.EventTypeWarning, "UnexpectedJob", "Saw a job that the controller did not create or forgot: %s", j.Name)
		case found && isFinished(j):
			_, status := finishedStatus(j)
			deleteFromActiveList(cj, j.UID)
			c.recorder.Eventf(cj, corev1.EventTypeNormal, "SawCompletedJob", "Saw completed job: %s, status: %v", j.Name, status)
			updateStatus = true
		case isSucceeded(j):
			// Whether it is still listed or not, a Job that succeeded
			// moves lastSuccessfulTime on.
			if j.Status.CompletionTime != nil && (cj.Status.LastSuccessfulTime == nil || j.Status.CompletionTime.After(cj.Status.LastSuccessfulTime.Time)) {
				cj.Status.LastSuccessfulTime = j.Status.CompletionTime
				updateStatus = true
			}
		}
	}

	// An active Job that no longer exists is dropped, or the CronJob would
	// count it active forever. The cache may just be behind: ask the API.
	for _, ref := range slices.Clone(cj.Status.Active) {
		if children[ref.UID] {
			continue
		}
		_, err := c.client.BatchV1().Jobs(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			c.recorder.Eventf(cj, corev1.EventTypeNormal, "MissingJob", "Active job went missing: %v", ref.Name)
			deleteFromActiveList(cj, ref.UID)
			updateStatus = true
		case err != nil:
			return nil, updateStatus, err
		}
	}

	if cj.DeletionTimestamp != nil {
		return nil, updateStatus, nil
	}
	if tz := cj.Spec.TimeZone; tz != nil {
		if _, err := time.LoadLocation(*tz); err != nil {
			c.recorder.Eventf(cj, corev1.EventTypeWarning, "UnknownTimeZone", "invalid timeZone: %q: %s", *tz, err)
			return nil, updateStatus, nil
		}
	}
	if cj.Spec.Suspend != nil && *cj.Spec.Suspend {
		return nil, updateStatus, nil
	}
	sched, err := cron.ParseStandard(formatSchedule(cj, c.recorder))
	if err != nil {
		c.recorder.Eventf(cj, corev1.EventTypeWarning, "UnparseableSchedule", "unparseable schedule: %q : %s", cj.Spec.Schedule, err)
		return nil, updateStatus, nil
	}
	scheduledTime, err := c.nextScheduleTime(cj, now, sched)
	if err != nil {
		c.recorder.Eventf(cj, corev1.EventTypeWarning, "InvalidSchedule", "invalid schedule: %s : %s", cj.Spec.Schedule, err)
		return nil, updateStatus, nil
	}
	if scheduledTime == nil {
		// Nothing due yet (a sync brought by a change, or after a restart).
		return nextScheduleTimeDuration(cj, now, sched), updateStatus, nil
	}
	if d := cj.Spec.StartingDeadlineSeconds; d != nil && scheduledTime.Add(time.Duration(*d)*time.Second).Before(now) {
		c.recorder.Eventf(cj, corev1.EventTypeWarning, "MissSchedule", "Missed scheduled time to start a job: %s", scheduledTime.UTC().Format(time.RFC1123Z))
		return nextScheduleTimeDuration(cj, now, sched), updateStatus, nil
	}
	jobName := jobNameFor(cj, *scheduledTime)
	if inActiveListByName(cj, cj.Namespace, jobName) || cj.Status.LastScheduleTime.Equal(&metav1.Time{Time: *scheduledTime}) {
		// This time has been run already.
		return nextScheduleTimeDuration(cj, now, sched), updateStatus, nil
	}
	if cj.Spec.ConcurrencyPolicy == batchv1.ForbidConcurrent && len(cj.Status.Active) > 0 {
		// The status may lag behind a Job just made, so Forbid can still
		// let two run if schedule times are close; Kubernetes' too.
		c.recorder.Eventf(cj, corev1.EventTypeNormal, "JobAlreadyActive", "Not starting job because prior execution is running and concurrency policy is Forbid")
		return nextScheduleTimeDuration(cj, now, sched), updateStatus, nil
	}
	if cj.Spec.ConcurrencyPolicy == batchv1.ReplaceConcurrent {
		for _, ref := range slices.Clone(cj.Status.Active) {
			job, err := c.client.BatchV1().Jobs(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
			if err != nil {
				c.recorder.Eventf(cj, corev1.EventTypeWarning, "FailedGet", "Get job: %v", err)
				return nil, updateStatus, err
			}
			if !c.deleteJob(ctx, cj, job) {
				return nil, updateStatus, fmt.Errorf("could not replace job %s/%s", job.Namespace, job.Name)
			}
			updateStatus = true
		}
	}

	req, err := jobFromTemplate(cj, *scheduledTime)
	if err != nil {
		return nil, updateStatus, err
	}
	job, err := c.client.BatchV1().Jobs(cj.Namespace).Create(ctx, req, metav1.CreateOptions{})
	switch {
	case apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause):
		return nil, updateStatus, err
	case apierrors.IsAlreadyExists(err):
		// Made before, by us (with the status write lost) or by someone
		// else, who then keeps the status.
		existing, err := c.client.BatchV1().Jobs(cj.Namespace).Get(ctx, req.Name, metav1.GetOptions{})
		if err != nil {
			return nil, updateStatus, err
		}
		if !metav1.IsControlledBy(existing, cj) || inActiveList(cj, existing.UID) {
			return nil, updateStatus, nil
		}
		job = existing
		c.log.Info("job already exists", "cronjob", cj.Namespace+"/"+cj.Name, "job", job.Name)
	case err != nil:
		c.recorder.Eventf(cj, corev1.EventTypeWarning, "FailedCreate", "Error creating job: %v", err)
		return nil, updateStatus, err
	default:
		c.log.Info("created job", "cronjob", cj.Namespace+"/"+cj.Name, "job", job.Name, "scheduled", scheduledTime.UTC())
		c.recorder.Eventf(cj, corev1.EventTypeNormal, "SuccessfulCreate", "Created job %v", job.Name)
	}
	// Should this controller stop here, before the status is written, the
	// next sync finds the Job by its name, which is the time's.
	cj.Status.Active = append(cj.Status.Active, jobRef(job))
	cj.Status.LastScheduleTime = &metav1.Time{Time: *scheduledTime}
	return nextScheduleTimeDuration(cj, now, sched), true, nil
}

// cleanupFinishedJobs deletes the oldest finished Jobs beyond the history
// limits, reporting whether the status changed.
func (c *Controller) cleanupFinishedJobs(ctx context.Context, cj *batchv1.CronJob, jobs []*batchv1.Job) bool {
	if cj.Spec.SuccessfulJobsHistoryLimit == nil && cj.Spec.FailedJobsHistoryLimit == nil {
		return false
	}
	var succeeded, failed []*batchv1.Job
	for _, j := range jobs {
		switch finished, status := finishedStatus(j); {
		case finished && status == batchv1.JobComplete:
			succeeded = append(succeeded, j)
		case finished && status == batchv1.JobFailed:
			failed = append(failed, j)
		}
	}
	updated := false
	if limit := cj.Spec.SuccessfulJobsHistoryLimit; limit != nil && c.removeOldestJobs(ctx, cj, succeeded, *limit) {
		updated = true
	}
	if limit := cj.Spec.FailedJobsHistoryLimit; limit != nil && c.removeOldestJobs(ctx, cj, failed, *limit) {
		updated = true
	}
	return updated
}

func (c *Controller) removeOldestJobs(ctx context.Context, cj *batchv1.CronJob, jobs []*batchv1.Job, keep int32) bool {
	n := len(jobs) - int(keep)
	if n <= 0 {
		return false
	}
	jobs = slices.Clone(jobs)
	slices.SortStableFunc(jobs, compareStartTime)
	updated := false
	for _, j := range jobs[:n] {
		if c.deleteJob(ctx, cj, j) {
			updated = true
		}
	}
	return updated
}

// deleteJob deletes a Job of the CronJob with its pods (in the background)
// and drops it from the active list.
func (c *Controller) deleteJob(ctx context.Context, cj *batchv1.CronJob, job *batchv1.Job) bool {
	bg := metav1.DeletePropagationBackground
	if err := c.client.BatchV1().Jobs(job.Namespace).Delete(ctx, job.Name, metav1.DeleteOptions{PropagationPolicy: &bg}); err != nil {
		c.recorder.Eventf(cj, corev1.EventTypeWarning, "FailedDelete", "Deleted job: %v", err)
		c.log.Warn("delete job of cronjob", "cronjob", cj.Namespace+"/"+cj.Name, "job", job.Name, "err", err)
		return false
	}
	deleteFromActiveList(cj, job.UID)
	c.recorder.Eventf(cj, corev1.EventTypeNormal, "SuccessfulDelete", "Deleted job %v", job.Name)
	return true
}

// jobFromTemplate is the Job for the scheduled time: the template's labels,
// annotations and spec, the CronJob as controller, the time in its name and
// (in the CronJob's time zone) in an annotation.
func jobFromTemplate(cj *batchv1.CronJob, scheduled time.Time) (*batchv1.Job, error) {
	loc, err := time.LoadLocation(ptr.Deref(cj.Spec.TimeZone, ""))
	if err != nil {
		return nil, err
	}
	lbls := map[string]string{}
	for k, v := range cj.Spec.JobTemplate.Labels {
		lbls[k] = v
	}
	annotations := map[string]string{}
	for k, v := range cj.Spec.JobTemplate.Annotations {
		annotations[k] = v
	}
	annotations[batchv1.CronJobScheduledTimestampAnnotation] = scheduled.In(loc).Format(time.RFC3339)
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name:            jobNameFor(cj, scheduled),
			Namespace:       cj.Namespace,
			Labels:          lbls,
			Annotations:     annotations,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(cj, controllerKind)},
		},
	}
	cj.Spec.JobTemplate.Spec.DeepCopyInto(&job.Spec)
	return job, nil
}

// jobNameFor is <cronjob>-<scheduled time in minutes since the epoch>: a
// schedule fires at most once a minute.
func jobNameFor(cj *batchv1.CronJob, scheduled time.Time) string {
	return fmt.Sprintf("%s-%d", cj.Name, scheduled.Unix()/60)
}

func jobRef(job *batchv1.Job) corev1.ObjectReference {
	return corev1.ObjectReference{
		Kind: "Job", APIVersion: batchv1.SchemeGroupVersion.String(),
		Namespace: job.Namespace, Name: job.Name, UID: job.UID, ResourceVersion: job.ResourceVersion,
	}
}

// formatSchedule is the schedule as the cron parser reads it: with the
// time zone as a TZ= prefix. A schedule that names its own TZ is warned
// about (the API rejects new ones) and read as it is.
func formatSchedule(cj *batchv1.CronJob, recorder record.EventRecorder) string {
	if strings.Contains(cj.Spec.Schedule, "TZ") {
		if recorder != nil {
			recorder.Eventf(cj, corev1.EventTypeWarning, "UnsupportedSchedule",
				"CRON_TZ or TZ used in schedule %q is not officially supported, see https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/ for more details", cj.Spec.Schedule)
		}
		return cj.Spec.Schedule
	}
	if tz := cj.Spec.TimeZone; tz != nil {
		if _, err := time.LoadLocation(*tz); err != nil {
			return cj.Spec.Schedule
		}
		return fmt.Sprintf("TZ=%s %s", *tz, cj.Spec.Schedule)
	}
	return cj.Spec.Schedule
}

func finishedStatus(j *batchv1.Job) (bool, batchv1.JobConditionType) {
	for _, c := range j.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return true, c.Type
		}
	}
	return false, ""
}

func isFinished(j *batchv1.Job) bool {
	finished, _ := finishedStatus(j)
	return finished
}

func isSucceeded(j *batchv1.Job) bool {
	finished, status := finishedStatus(j)
	return finished && status == batchv1.JobComplete
}

func inActiveList(cj *batchv1.CronJob, uid types.UID) bool {
	return slices.ContainsFunc(cj.Status.Active, func(r corev1.ObjectReference) bool { return r.UID == uid })
}

func inActiveListByName(cj *batchv1.CronJob, namespace, name string) bool {
	return slices.ContainsFunc(cj.Status.Active, func(r corev1.ObjectReference) bool { return r.Name == name && r.Namespace == namespace })
}

func deleteFromActiveList(cj *batchv1.CronJob, uid types.UID) {
	active := []corev1.ObjectReference{}
	for _, r := range cj.Status.Active {
		if r.UID != uid {
			active = append(active, r)
		}
	}
	cj.Status.Active = active
}

// compareStartTime orders Jobs by start time, those not started last, then
// by name.
func compareStartTime(a, b *batchv1.Job) int {
	sa, sb := a.Status.StartTime, b.Status.StartTime
	switch {
	case sa == nil && sb != nil:
		return 1
	case sa != nil && sb == nil:
		return -1
	case sa != nil && !sa.Equal(sb):
		return sa.Compare(sb.Time)
	}
	return strings.Compare(a.Name, b.Name)
}

package job

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	ktesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"
)

// fixture is a controller on a fake API whose informer caches the test
// refreshes by hand (resync), so that a test decides what each sync sees.
type fixture struct {
	t       *testing.T
	client  *fake.Clientset
	factory informers.SharedInformerFactory
	c       *Controller
	rec     *record.FakeRecorder
	now     time.Time
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newFixture(t *testing.T, objs ...runtime.Object) *fixture {
	t.Helper()
	f := &fixture{t: t, client: fake.NewClientset(objs...), rec: record.NewFakeRecorder(100), now: t0}
	// The fake API does not generate names or uids.
	n := 0
	f.client.PrependReactor("create", "pods", func(a ktesting.Action) (bool, runtime.Object, error) {
		pod := a.(ktesting.CreateAction).GetObject().(*corev1.Pod)
		if pod.Name == "" {
			n++
			pod.Name = fmt.Sprintf("%s%05d", pod.GenerateName, n)
		}
		pod.UID = types.UID("uid-" + pod.Name)
		return false, nil, nil
	})
	f.factory = informers.NewSharedInformerFactory(f.client, 0)
	f.c = New(f.client, f.factory, f.rec, nil)
	f.c.now = func() time.Time { return f.now }
	f.resync()
	return f
}

// resync makes the caches show what the API holds, and forgets the
// actions so far.
func (f *fixture) resync() {
	f.t.Helper()
	ctx := context.Background()
	jobs, err := f.client.BatchV1().Jobs("").List(ctx, metav1.ListOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	pods, err := f.client.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	var js, ps []any
	for i := range jobs.Items {
		js = append(js, &jobs.Items[i])
	}
	for i := range pods.Items {
		ps = append(ps, &pods.Items[i])
	}
	if err := f.factory.Batch().V1().Jobs().Informer().GetIndexer().Replace(js, ""); err != nil {
		f.t.Fatal(err)
	}
	if err := f.factory.Core().V1().Pods().Informer().GetIndexer().Replace(ps, ""); err != nil {
		f.t.Fatal(err)
	}
	f.client.ClearActions()
}

func (f *fixture) sync(name string) {
	f.t.Helper()
	if err := f.c.syncJob(context.Background(), "default/"+name); err != nil {
		f.t.Fatalf("sync %s: %v", name, err)
	}
}

// writes are the verbs and resources of the API writes since the last resync.
func (f *fixture) writes() []string {
	var out []string
	for _, a := range f.client.Actions() {
		if a.GetVerb() == "list" || a.GetVerb() == "watch" || a.GetVerb() == "get" {
			continue
		}
		w := a.GetVerb() + " " + a.GetResource().Resource
		if a.GetSubresource() != "" {
			w += "/" + a.GetSubresource()
		}
		out = append(out, w)
	}
	return out
}

// statusWrites are the Job statuses written since the last resync.
func (f *fixture) statusWrites() []batchv1.JobStatus {
	var out []batchv1.JobStatus
	for _, a := range f.client.Actions() {
		if u, ok := a.(ktesting.UpdateAction); ok && a.GetSubresource() == "status" {
			out = append(out, u.GetObject().(*batchv1.Job).Status)
		}
	}
	return out
}

func (f *fixture) created() []*corev1.Pod {
	var out []*corev1.Pod
	for _, a := range f.client.Actions() {
		if c, ok := a.(ktesting.CreateAction); ok && a.GetResource().Resource == "pods" {
			out = append(out, c.GetObject().(*corev1.Pod))
		}
	}
	return out
}

func (f *fixture) events() []string {
	var out []string
	for {
		select {
		case e := <-f.rec.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func (f *fixture) job(name string) *batchv1.Job {
	f.t.Helper()
	j, err := f.client.BatchV1().Jobs("default").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	return j
}

// newJob is a Job as the API stores it: defaulted, with the generated
// selector and labels.
func newJob(name string, completions, parallelism *int32) *batchv1.Job {
	uid := types.UID("job-uid-" + name)
	lbls := map[string]string{batchv1.JobNameLabel: name, batchv1.ControllerUidLabel: string(uid), "job-name": name, "controller-uid": string(uid)}
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: uid},
		Spec: batchv1.JobSpec{
			Completions: completions, Parallelism: parallelism, BackoffLimit: ptr.To(int32(6)),
			CompletionMode:       ptr.To(batchv1.NonIndexedCompletion),
			Suspend:              ptr.To(false),
			PodReplacementPolicy: ptr.To(batchv1.TerminatingOrFailed),
			Selector:             &metav1.LabelSelector{MatchLabels: map[string]string{batchv1.ControllerUidLabel: string(uid)}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: lbls},
				Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever,
					Containers: []corev1.Container{{Name: "main", Image: "busybox"}}},
			},
		},
	}
}

// jobPod is a pod of the Job in the given phase, with the tracking
// finalizer, finished at t0 if it finished.
func jobPod(job *batchv1.Job, name string, phase corev1.PodPhase) *corev1.Pod {
	p := podFromTemplate(job, &job.Spec.Template, "")
	p.Name, p.UID = name, types.UID("uid-"+name)
	p.Finalizers = []string{batchv1.JobTrackingFinalizer}
	p.Spec.NodeName = "node"
	p.Status.Phase = phase
	if phase == corev1.PodSucceeded || phase == corev1.PodFailed {
		code := int32(0)
		if phase == corev1.PodFailed {
			code = 1
		}
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "main", State: corev1.ContainerState{
			Terminated: &corev1.ContainerStateTerminated{ExitCode: code, FinishedAt: metav1.NewTime(t0)}}}}
	}
	return p
}

func conditionTypes(st batchv1.JobStatus) []batchv1.JobConditionType {
	var out []batchv1.JobConditionType
	for _, c := range st.Conditions {
		out = append(out, c.Type)
	}
	return out
}

func TestSyncCreatesParallelismPodsWithLabelsOwnerAndFinalizer(t *testing.T) {
	job := newJob("work", ptr.To(int32(5)), ptr.To(int32(2)))
	f := newFixture(t, job)
	f.sync("work")

	created := f.created()
	if len(created) != 2 {
		t.Fatalf("created %d pods, want parallelism 2; writes %v", len(created), f.writes())
	}
	for _, p := range created {
		if p.GenerateName != "work-" {
			t.Errorf("generateName %q, want work-", p.GenerateName)
		}
		if !metav1.IsControlledBy(p, job) || !*p.OwnerReferences[0].BlockOwnerDeletion {
			t.Errorf("owners %+v, want the job as blocking controller", p.OwnerReferences)
		}
		if !slices.Equal(p.Finalizers, []string{batchv1.JobTrackingFinalizer}) {
			t.Errorf("finalizers %v", p.Finalizers)
		}
		if p.Labels[batchv1.JobNameLabel] != "work" || p.Labels["controller-uid"] != string(job.UID) {
			t.Errorf("labels %v", p.Labels)
		}
	}
	st := f.statusWrites()
	if len(st) != 1 || st[0].Active != 2 || st[0].StartTime == nil || !st[0].StartTime.Time.Equal(t0) ||
		*st[0].Ready != 0 || *st[0].Terminating != 0 {
		t.Fatalf("status writes %+v, want one with active 2 and startTime", st)
	}
	if ev := f.events(); len(ev) != 2 || !strings.HasPrefix(ev[0], "Normal SuccessfulCreate Created pod: work-") {
		t.Errorf("events %v", ev)
	}

	// The informer has not shown the pods yet: the next sync must not
	// create more.
	f.client.ClearActions()
	f.sync("work")
	if len(f.created()) != 0 {
		t.Errorf("created pods again before the first ones were seen")
	}
}

func TestSyncCountsSucceededPodsOnceThenCompletes(t *testing.T) {
	job := newJob("two", ptr.To(int32(2)), ptr.To(int32(2)))
	job.Status.StartTime = &metav1.Time{Time: t0.Add(-time.Minute)}
	f := newFixture(t, job, jobPod(job, "two-a", corev1.PodSucceeded), jobPod(job, "two-b", corev1.PodSucceeded))
	f.now = t0.Add(time.Second)
	f.sync("two")

	if w := f.writes(); !slices.Equal(w, []string{"update jobs/status", "patch pods", "patch pods", "update jobs/status"}) {
		t.Fatalf("writes %v: want uncounted pods written, finalizers removed, then the counts", w)
	}
	st := f.statusWrites()
	first, last := st[0], st[1]
	if u := first.UncountedTerminatedPods; len(u.Succeeded) != 2 || first.Succeeded != 0 {
		t.Errorf("first write: uncounted %+v, succeeded %d; want both pods uncounted", u, first.Succeeded)
	}
	if !slices.Equal(conditionTypes(first), []batchv1.JobConditionType{batchv1.JobSuccessCriteriaMet}) {
		t.Errorf("first write: conditions %v, want SuccessCriteriaMet", conditionTypes(first))
	}
	if u := last.UncountedTerminatedPods; len(u.Succeeded) != 0 || last.Succeeded != 2 {
		t.Errorf("last write: uncounted %+v, succeeded %d; want 2 counted", u, last.Succeeded)
	}
	if !slices.Equal(conditionTypes(last), []batchv1.JobConditionType{batchv1.JobSuccessCriteriaMet, batchv1.JobComplete}) {
		t.Errorf("last write: conditions %v", conditionTypes(last))
	}
	if c := last.Conditions[1]; c.Reason != batchv1.JobReasonCompletionsReached || c.Message != "Reached expected number of succeeded pods" {
		t.Errorf("Complete condition %+v", c)
	}
	if last.CompletionTime == nil || !last.CompletionTime.Time.Equal(f.now) {
		t.Errorf("completionTime %v, want %v", last.CompletionTime, f.now)
	}
	for _, name := range []string{"two-a", "two-b"} {
		p, _ := f.client.CoreV1().Pods("default").Get(context.Background(), name, metav1.GetOptions{})
		if len(p.Finalizers) != 0 {
			t.Errorf("pod %s keeps finalizers %v", name, p.Finalizers)
		}
	}
	if ev := f.events(); !slices.Equal(ev, []string{"Normal Completed Job completed"}) {
		t.Errorf("events %v", ev)
	}
}

func TestSyncDoesNotCountAPodWhoseFinalizerRemovalIsNotSeenYet(t *testing.T) {
	job := newJob("slow-cache", ptr.To(int32(3)), ptr.To(int32(1)))
	job.Status.StartTime = &metav1.Time{Time: t0}
	done := jobPod(job, "slow-cache-a", corev1.PodSucceeded)
	f := newFixture(t, job, done)
	f.sync("slow-cache")
	if got := f.job("slow-cache").Status.Succeeded; got != 1 {
		t.Fatalf("succeeded %d after the first sync, want 1", got)
	}
	// The job's cache catches up; the pod's still shows the finalizer.
	jobs := f.factory.Batch().V1().Jobs().Informer().GetIndexer()
	if err := jobs.Update(f.job("slow-cache")); err != nil {
		t.Fatal(err)
	}
	f.client.ClearActions()
	f.sync("slow-cache")
	if got := f.job("slow-cache").Status.Succeeded; got != 1 {
		t.Errorf("succeeded %d after the second sync, want the pod counted once", got)
	}
}

func TestSyncFailsTheJobPastItsBackoffLimit(t *testing.T) {
	job := newJob("bad", ptr.To(int32(1)), ptr.To(int32(1)))
	job.Spec.BackoffLimit = ptr.To(int32(1))
	job.Status.StartTime = &metav1.Time{Time: t0.Add(-time.Minute)}
	f := newFixture(t, job, jobPod(job, "bad-a", corev1.PodFailed), jobPod(job, "bad-b", corev1.PodFailed))
	f.sync("bad")
	if len(f.created()) != 0 {
		t.Errorf("created a pod for a job past its backoff limit")
	}
	st := f.statusWrites()
	if len(st) != 2 {
		t.Fatalf("status writes %+v", st)
	}
	if !slices.Equal(conditionTypes(st[0]), []batchv1.JobConditionType{batchv1.JobFailureTarget}) || len(st[0].UncountedTerminatedPods.Failed) != 2 {
		t.Errorf("first write %+v: want FailureTarget and both pods uncounted", st[0])
	}
	last := st[1]
	if !slices.Equal(conditionTypes(last), []batchv1.JobConditionType{batchv1.JobFailureTarget, batchv1.JobFailed}) || last.Failed != 2 {
		t.Errorf("last write: conditions %v, failed %d", conditionTypes(last), last.Failed)
	}
	for _, c := range last.Conditions {
		if c.Reason != batchv1.JobReasonBackoffLimitExceeded || c.Message != "Job has reached the specified backoff limit" {
			t.Errorf("condition %+v", c)
		}
	}
	if last.CompletionTime != nil {
		t.Errorf("completionTime on a failed job")
	}
	if ev := f.events(); !slices.Equal(ev, []string{"Warning BackoffLimitExceeded Job has reached the specified backoff limit"}) {
		t.Errorf("events %v", ev)
	}
}

func TestSyncWaitsOutThePodFailureBackoff(t *testing.T) {
	job := newJob("retry", ptr.To(int32(1)), ptr.To(int32(1)))
	job.Status.StartTime = &metav1.Time{Time: t0.Add(-time.Minute)}
	f := newFixture(t, job, jobPod(job, "retry-a", corev1.PodFailed))
	f.now = t0.Add(3 * time.Second) // the pod failed at t0
	f.sync("retry")
	if len(f.created()) != 0 {
		t.Fatalf("replaced the failed pod 3s after it failed, want a 10s back-off")
	}
	if got := f.job("retry").Status.Failed; got != 1 {
		t.Errorf("failed %d, want 1", got)
	}

	f.resync()
	f.now = t0.Add(10 * time.Second)
	f.sync("retry")
	if len(f.created()) != 1 {
		t.Fatalf("created %d pods after the back-off, want 1", len(f.created()))
	}

}

func TestSyncGivesIndexedPodsTheirIndexes(t *testing.T) {
	job := newJob("idx", ptr.To(int32(3)), ptr.To(int32(2)))
	job.Spec.CompletionMode = ptr.To(batchv1.IndexedCompletion)
	job.Status.StartTime = &metav1.Time{Time: t0}
	zero := jobPod(job, "idx-0-abcde", corev1.PodSucceeded)
	zero.Annotations = map[string]string{batchv1.JobCompletionIndexAnnotation: "0"}
	f := newFixture(t, job, zero)
	f.sync("idx")

	created := f.created()
	if len(created) != 2 {
		t.Fatalf("created %d pods, want indexes 1 and 2", len(created))
	}
	for i, p := range created {
		ix := fmt.Sprint(i + 1)
		if p.GenerateName != "idx-"+ix+"-" || p.Annotations[batchv1.JobCompletionIndexAnnotation] != ix ||
			p.Labels[batchv1.JobCompletionIndexAnnotation] != ix || p.Spec.Hostname != "idx-"+ix {
			t.Errorf("pod %d: generateName %q, annotations %v, labels %v, hostname %q", i, p.GenerateName, p.Annotations, p.Labels, p.Spec.Hostname)
		}
		env := p.Spec.Containers[0].Env
		if len(env) != 1 || env[0].Name != "JOB_COMPLETION_INDEX" ||
			env[0].ValueFrom.FieldRef.FieldPath != "metadata.labels['batch.kubernetes.io/job-completion-index']" {
			t.Errorf("pod %d: env %+v", i, env)
		}
	}
	if st := f.job("idx").Status; st.CompletedIndexes != "0" || st.Succeeded != 1 || st.Active != 2 {
		t.Errorf("status completedIndexes %q, succeeded %d, active %d", st.CompletedIndexes, st.Succeeded, st.Active)
	}
}

func TestSyncEndsAJobPastItsActiveDeadline(t *testing.T) {
	job := newJob("late", ptr.To(int32(1)), ptr.To(int32(1)))
	job.Spec.ActiveDeadlineSeconds = ptr.To(int64(10))
	job.Status.StartTime = &metav1.Time{Time: t0.Add(-11 * time.Second)}
	running := jobPod(job, "late-a", corev1.PodRunning)
	f := newFixture(t, job, running)
	f.sync("late")
	if w := f.writes(); !slices.Contains(w, "delete pods") {
		t.Fatalf("writes %v, want the running pod deleted", w)
	}
	st := f.job("late").Status
	if !slices.Equal(conditionTypes(st), []batchv1.JobConditionType{batchv1.JobFailureTarget}) ||
		st.Conditions[0].Reason != batchv1.JobReasonDeadlineExceeded || *st.Terminating != 1 {
		t.Fatalf("status %+v: want FailureTarget/DeadlineExceeded while the pod terminates", st)
	}
	// The pod is gone: the Job fails, counting it.
	f.resync()
	f.sync("late")
	st = f.job("late").Status
	if !slices.Equal(conditionTypes(st), []batchv1.JobConditionType{batchv1.JobFailureTarget, batchv1.JobFailed}) || st.Failed != 1 || st.Active != 0 {
		t.Errorf("status %+v: want Failed, failed 1", st)
	}
	if ev := f.events(); !slices.Equal(ev, []string{"Normal SuccessfulDelete Deleted pod: late-a", "Warning DeadlineExceeded Job was active longer than specified deadline"}) {
		t.Errorf("events %v", ev)
	}
}

func TestSyncSuspendedJobDeletesItsPods(t *testing.T) {
	job := newJob("paused", ptr.To(int32(2)), ptr.To(int32(2)))
	job.Spec.Suspend = ptr.To(true)
	f := newFixture(t, job, jobPod(job, "paused-a", corev1.PodRunning))
	f.sync("paused")
	st := f.job("paused").Status
	if st.StartTime != nil || st.Active != 0 || len(st.Conditions) != 1 || st.Conditions[0].Type != batchv1.JobSuspended {
		t.Errorf("status %+v: want no start time, Suspended", st)
	}
	if w := f.writes(); !slices.Contains(w, "delete pods") {
		t.Errorf("writes %v, want the pod deleted", w)
	}
}

func TestSyncIgnoresJobsManagedElsewhere(t *testing.T) {
	job := newJob("theirs", ptr.To(int32(1)), ptr.To(int32(1)))
	job.Spec.ManagedBy = ptr.To("example.com/other")
	f := newFixture(t, job)
	f.sync("theirs")
	if w := f.writes(); len(w) != 0 {
		t.Errorf("writes %v for a job managed by another controller", w)
	}
}

func TestOrphanPodLosesItsTrackingFinalizer(t *testing.T) {
	job := newJob("gone", ptr.To(int32(1)), ptr.To(int32(1)))
	orphan := jobPod(job, "gone-a", corev1.PodSucceeded) // its Job is not there
	f := newFixture(t, orphan)
	if err := f.c.syncOrphanPod(context.Background(), "default/gone-a"); err != nil {
		t.Fatal(err)
	}
	p, _ := f.client.CoreV1().Pods("default").Get(context.Background(), "gone-a", metav1.GetOptions{})
	if len(p.Finalizers) != 0 {
		t.Errorf("finalizers %v, want none", p.Finalizers)
	}
}

func TestTTLDeletesAFinishedJobOnceItPasses(t *testing.T) {
	job := newJob("ttl", ptr.To(int32(1)), ptr.To(int32(1)))
	job.Spec.TTLSecondsAfterFinished = ptr.To(int32(10))
	job.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(t0)}}
	f := newFixture(t, job)
	f.now = t0.Add(9 * time.Second)
	if err := f.c.syncTTL(context.Background(), "default/ttl"); err != nil {
		t.Fatal(err)
	}
	if w := f.writes(); len(w) != 0 {
		t.Fatalf("writes %v before the ttl passed", w)
	}
	f.now = t0.Add(10 * time.Second)
	if err := f.c.syncTTL(context.Background(), "default/ttl"); err != nil {
		t.Fatal(err)
	}
	var del ktesting.DeleteAction
	for _, a := range f.client.Actions() {
		if d, ok := a.(ktesting.DeleteAction); ok {
			del = d
		}
	}
	if del == nil {
		t.Fatalf("actions %v, want the job deleted", f.client.Actions())
	}
	opts := del.GetDeleteOptions()
	if opts.PropagationPolicy == nil || *opts.PropagationPolicy != metav1.DeletePropagationForeground ||
		opts.Preconditions == nil || *opts.Preconditions.UID != job.UID {
		t.Errorf("delete options %+v, want foreground with the uid precondition", opts)
	}
}

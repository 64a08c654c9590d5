package cronjob

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/robfig/cron/v3"
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

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func newCronJob(schedule string, created time.Time) *batchv1.CronJob {
	return &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: "cj", Namespace: "default", UID: "cj-uid", CreationTimestamp: metav1.NewTime(created)},
		Spec: batchv1.CronJobSpec{
			Schedule: schedule, ConcurrencyPolicy: batchv1.AllowConcurrent, Suspend: ptr.To(false),
			SuccessfulJobsHistoryLimit: ptr.To(int32(3)), FailedJobsHistoryLimit: ptr.To(int32(1)),
			JobTemplate: batchv1.JobTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "x"}, Annotations: map[string]string{"note": "y"}},
				Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever,
					Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}},
			},
		},
	}
}

func TestMostRecentScheduleTime(t *testing.T) {
	for _, tc := range []struct {
		name     string
		schedule string
		created  string
		last     string
		deadline *int64
		now      string
		want     string // "" for none
		missed   missed
		err      bool
	}{
		{name: "not yet", schedule: "* * * * *", created: "2026-03-01T10:00:30Z", now: "2026-03-01T10:00:50Z"},
		{name: "first minute", schedule: "* * * * *", created: "2026-03-01T10:00:30Z", now: "2026-03-01T10:01:10Z", want: "2026-03-01T10:01:00Z"},
		{name: "exactly on time", schedule: "* * * * *", created: "2026-03-01T10:00:30Z", now: "2026-03-01T10:01:00Z", want: "2026-03-01T10:01:00Z"},
		{name: "a few missed", schedule: "* * * * *", created: "2026-03-01T10:00:30Z", now: "2026-03-01T10:05:10Z", want: "2026-03-01T10:05:00Z", missed: fewMissed},
		{name: "after the last run", schedule: "* * * * *", created: "2026-03-01T09:00:00Z", last: "2026-03-01T10:01:00Z", now: "2026-03-01T10:01:30Z"},
		{name: "hourly", schedule: "@hourly", created: "2026-03-01T09:30:00Z", now: "2026-03-01T12:10:00Z", want: "2026-03-01T12:00:00Z", missed: fewMissed},
		{name: "irregular", schedule: "30 6-16/4 * * 1-5", created: "2026-02-27T07:00:00Z", now: "2026-03-02T15:00:00Z", want: "2026-03-02T14:30:00Z", missed: fewMissed},
		{name: "many missed", schedule: "* * * * *", created: "2026-02-24T10:00:00Z", now: "2026-03-01T10:00:30Z", want: "2026-03-01T10:00:00Z", missed: manyMissed},
		{name: "starting deadline bounds the search", schedule: "* * * * *", created: "2026-02-24T10:00:00Z", deadline: ptr.To(int64(30)), now: "2026-03-01T10:05:10Z", want: "2026-03-01T10:05:00Z"},
		{name: "past the starting deadline", schedule: "* * * * *", created: "2026-03-01T10:00:30Z", deadline: ptr.To(int64(10)), now: "2026-03-01T10:01:30Z"},
		{name: "time zone", schedule: "TZ=Asia/Tokyo 0 9 * * *", created: "2026-02-28T12:00:00Z", now: "2026-03-01T00:00:30Z", want: "2026-03-01T00:00:00Z"},
		{name: "never fires", schedule: "59 23 31 2 *", created: "2026-02-28T12:00:00Z", now: "2026-03-01T00:00:30Z", err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cj := newCronJob(tc.schedule, at(tc.created))
			cj.Spec.StartingDeadlineSeconds = tc.deadline
			if tc.last != "" {
				cj.Status.LastScheduleTime = &metav1.Time{Time: at(tc.last)}
			}
			sched, err := cron.ParseStandard(tc.schedule)
			if err != nil {
				t.Fatal(err)
			}
			_, got, m, err := mostRecentScheduleTime(cj, at(tc.now), sched, true)
			if (err != nil) != tc.err {
				t.Fatalf("err %v, want error %v", err, tc.err)
			}
			switch {
			case tc.want == "" && got != nil:
				t.Errorf("most recent %v, want none", got)
			case tc.want != "" && (got == nil || !got.Equal(at(tc.want))):
				t.Errorf("most recent %v, want %s", got, tc.want)
			}
			if m != tc.missed {
				t.Errorf("missed %v, want %v", m, tc.missed)
			}
		})
	}
}

func TestNextScheduleTimeDurationAimsJustPastTheNextTime(t *testing.T) {
	sched, _ := cron.ParseStandard("*/5 * * * *")
	cj := newCronJob("*/5 * * * *", at("2026-03-01T10:00:30Z"))
	if d := *nextScheduleTimeDuration(cj, at("2026-03-01T10:02:00Z"), sched); d != 3*time.Minute+nextScheduleDelta {
		t.Errorf("before the first time: %v", d)
	}
	// Times were missed (no Job made for 10:05): aim at the next one from now.
	if d := *nextScheduleTimeDuration(cj, at("2026-03-01T10:11:00Z"), sched); d != 4*time.Minute+nextScheduleDelta {
		t.Errorf("after missed times: %v", d)
	}
	cj.Status.LastScheduleTime = &metav1.Time{Time: at("2026-03-01T10:10:00Z")}
	if d := *nextScheduleTimeDuration(cj, at("2026-03-01T10:11:00Z"), sched); d != 4*time.Minute+nextScheduleDelta {
		t.Errorf("after the last run: %v", d)
	}
}

// fixture is a controller on a fake API, its caches filled by hand.
type fixture struct {
	t      *testing.T
	client *fake.Clientset
	c      *Controller
	rec    *record.FakeRecorder
	now    time.Time
	fac    informers.SharedInformerFactory
}

func newFixture(t *testing.T, now time.Time, objs ...runtime.Object) *fixture {
	f := &fixture{t: t, client: fake.NewClientset(objs...), rec: record.NewFakeRecorder(100), now: now}
	f.client.PrependReactor("create", "jobs", func(a ktesting.Action) (bool, runtime.Object, error) {
		job := a.(ktesting.CreateAction).GetObject().(*batchv1.Job)
		job.UID = types.UID("uid-" + job.Name)
		return false, nil, nil
	})
	f.fac = informers.NewSharedInformerFactory(f.client, 0)
	f.c = New(f.client, f.fac, f.rec, nil)
	f.c.now = func() time.Time { return f.now }
	for _, o := range objs {
		switch o := o.(type) {
		case *batchv1.CronJob:
			_ = f.fac.Batch().V1().CronJobs().Informer().GetIndexer().Add(o)
		case *batchv1.Job:
			_ = f.fac.Batch().V1().Jobs().Informer().GetIndexer().Add(o)
		}
	}
	return f
}

func (f *fixture) sync() *time.Duration {
	f.t.Helper()
	d, err := f.c.sync(context.Background(), "default/cj")
	if err != nil {
		f.t.Fatal(err)
	}
	return d
}

func (f *fixture) cronJob() *batchv1.CronJob {
	cj, err := f.client.BatchV1().CronJobs("default").Get(context.Background(), "cj", metav1.GetOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	return cj
}

func (f *fixture) created() []*batchv1.Job {
	var out []*batchv1.Job
	for _, a := range f.client.Actions() {
		if c, ok := a.(ktesting.CreateAction); ok && a.GetResource().Resource == "jobs" {
			out = append(out, c.GetObject().(*batchv1.Job))
		}
	}
	return out
}

func (f *fixture) deleted() []string {
	var out []string
	for _, a := range f.client.Actions() {
		if d, ok := a.(ktesting.DeleteAction); ok && a.GetResource().Resource == "jobs" {
			if p := d.GetDeleteOptions().PropagationPolicy; p == nil || *p != metav1.DeletePropagationBackground {
				f.t.Errorf("job %s deleted with propagation %v, want Background", d.GetName(), p)
			}
			out = append(out, d.GetName())
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

func childJob(cj *batchv1.CronJob, name string, finished batchv1.JobConditionType, start time.Time) *batchv1.Job {
	j := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-" + name),
		OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(cj, controllerKind)}}}
	j.Status.StartTime = &metav1.Time{Time: start}
	if finished != "" {
		j.Status.Conditions = []batchv1.JobCondition{{Type: finished, Status: corev1.ConditionTrue}}
		if finished == batchv1.JobComplete {
			j.Status.CompletionTime = &metav1.Time{Time: start.Add(time.Minute)}
		}
	}
	return j
}

func activeRef(j *batchv1.Job) corev1.ObjectReference {
	return corev1.ObjectReference{Kind: "Job", APIVersion: "batch/v1", Namespace: j.Namespace, Name: j.Name, UID: j.UID}
}

func TestSyncCreatesTheJobOfTheScheduledMinute(t *testing.T) {
	cj := newCronJob("* * * * *", at("2026-03-01T10:00:30Z"))
	f := newFixture(t, at("2026-03-01T10:01:05Z"), cj)
	requeue := f.sync()

	created := f.created()
	if len(created) != 1 {
		t.Fatalf("created %d jobs, want 1", len(created))
	}
	job := created[0]
	if job.Name != "cj-29539321" { // 2026-03-01T10:01Z in minutes since the epoch
		t.Errorf("job name %q", job.Name)
	}
	if got := job.Annotations[batchv1.CronJobScheduledTimestampAnnotation]; got != "2026-03-01T10:01:00Z" {
		t.Errorf("scheduled-timestamp %q", got)
	}
	if job.Annotations["note"] != "y" || job.Labels["app"] != "x" || !metav1.IsControlledBy(job, cj) {
		t.Errorf("job meta %+v", job.ObjectMeta)
	}
	st := f.cronJob().Status
	if len(st.Active) != 1 || st.Active[0].Name != job.Name || st.Active[0].UID != "uid-"+types.UID(job.Name) ||
		st.LastScheduleTime == nil || !st.LastScheduleTime.Time.Equal(at("2026-03-01T10:01:00Z")) {
		t.Errorf("status %+v", st)
	}
	if requeue == nil || *requeue != 55*time.Second+nextScheduleDelta {
		t.Errorf("requeue after %v, want just past 10:02", requeue)
	}
	if ev := f.events(); !slices.Equal(ev, []string{"Normal SuccessfulCreate Created job cj-29539321"}) {
		t.Errorf("events %v", ev)
	}

	// Synced again within the minute (the status write brings it back):
	// the time was run.
	f.client.ClearActions()
	_ = f.fac.Batch().V1().CronJobs().Informer().GetIndexer().Update(f.cronJob())
	f.now = at("2026-03-01T10:01:06Z")
	f.sync()
	if len(f.created()) != 0 {
		t.Errorf("created the same minute's job twice")
	}
}

func TestSyncWritesTheScheduledTimeInTheCronJobsTimeZone(t *testing.T) {
	cj := newCronJob("0 9 * * *", at("2026-02-28T12:00:00Z"))
	cj.Spec.TimeZone = ptr.To("Asia/Tokyo")
	f := newFixture(t, at("2026-03-01T00:00:10Z"), cj)
	f.sync()
	created := f.created()
	if len(created) != 1 {
		t.Fatalf("created %d jobs, want the 09:00 Tokyo one", len(created))
	}
	if got := created[0].Annotations[batchv1.CronJobScheduledTimestampAnnotation]; got != "2026-03-01T09:00:00+09:00" {
		t.Errorf("scheduled-timestamp %q", got)
	}
}

func TestSyncForbidSkipsARunWhileAJobIsActive(t *testing.T) {
	cj := newCronJob("* * * * *", at("2026-03-01T10:00:30Z"))
	cj.Spec.ConcurrencyPolicy = batchv1.ForbidConcurrent
	running := childJob(cj, "cj-1", "", at("2026-03-01T10:01:00Z"))
	cj.Status.Active = []corev1.ObjectReference{activeRef(running)}
	cj.Status.LastScheduleTime = &metav1.Time{Time: at("2026-03-01T10:01:00Z")}
	f := newFixture(t, at("2026-03-01T10:02:01Z"), cj, running)
	f.sync()
	if len(f.created()) != 0 {
		t.Errorf("created a job while one is active under Forbid")
	}
	if ev := f.events(); !slices.Equal(ev, []string{"Normal JobAlreadyActive Not starting job because prior execution is running and concurrency policy is Forbid"}) {
		t.Errorf("events %v", ev)
	}
}

func TestSyncReplaceDeletesTheActiveJobAndStartsANewOne(t *testing.T) {
	cj := newCronJob("* * * * *", at("2026-03-01T10:00:30Z"))
	cj.Spec.ConcurrencyPolicy = batchv1.ReplaceConcurrent
	running := childJob(cj, "cj-1", "", at("2026-03-01T10:01:00Z"))
	cj.Status.Active = []corev1.ObjectReference{activeRef(running)}
	cj.Status.LastScheduleTime = &metav1.Time{Time: at("2026-03-01T10:01:00Z")}
	f := newFixture(t, at("2026-03-01T10:02:01Z"), cj, running)
	f.sync()
	if d := f.deleted(); !slices.Equal(d, []string{"cj-1"}) {
		t.Errorf("deleted %v, want the active job", d)
	}
	if len(f.created()) != 1 {
		t.Errorf("created %d jobs, want 1", len(f.created()))
	}
	if st := f.cronJob().Status; len(st.Active) != 1 || st.Active[0].Name == "cj-1" {
		t.Errorf("active %v, want only the new job", st.Active)
	}
	if ev := f.events(); len(ev) != 2 || ev[0] != "Normal SuccessfulDelete Deleted job cj-1" {
		t.Errorf("events %v", ev)
	}
}

func TestSyncAllowRunsJobsSideBySide(t *testing.T) {
	cj := newCronJob("* * * * *", at("2026-03-01T10:00:30Z"))
	running := childJob(cj, "cj-1", "", at("2026-03-01T10:01:00Z"))
	cj.Status.Active = []corev1.ObjectReference{activeRef(running)}
	cj.Status.LastScheduleTime = &metav1.Time{Time: at("2026-03-01T10:01:00Z")}
	f := newFixture(t, at("2026-03-01T10:02:01Z"), cj, running)
	f.sync()
	if len(f.created()) != 1 || len(f.deleted()) != 0 {
		t.Errorf("created %d, deleted %v; want one more job beside the running one", len(f.created()), f.deleted())
	}
	if st := f.cronJob().Status; len(st.Active) != 2 {
		t.Errorf("active %v, want 2", st.Active)
	}
}

func TestSyncStartsNothingPastTheStartingDeadlineOrWhenSuspended(t *testing.T) {
	late := newCronJob("*/5 * * * *", at("2026-03-01T10:00:30Z"))
	late.Spec.StartingDeadlineSeconds = ptr.To(int64(10))
	f := newFixture(t, at("2026-03-01T10:05:30Z"), late)
	if requeue := f.sync(); len(f.created()) != 0 || requeue == nil || *requeue != 4*time.Minute+30*time.Second+nextScheduleDelta {
		t.Errorf("late: created %d, requeue %v; want none, at 10:10", len(f.created()), requeue)
	}

	suspended := newCronJob("* * * * *", at("2026-03-01T10:00:30Z"))
	suspended.Spec.Suspend = ptr.To(true)
	f = newFixture(t, at("2026-03-01T10:05:30Z"), suspended)
	if requeue := f.sync(); len(f.created()) != 0 || requeue != nil {
		t.Errorf("suspended: created %d, requeue %v; want none, not requeued", len(f.created()), requeue)
	}
}

func TestSyncSeesAJobFinishAndRecordsItsSuccess(t *testing.T) {
	cj := newCronJob("0 * * * *", at("2026-03-01T09:30:00Z"))
	done := childJob(cj, "cj-1", batchv1.JobComplete, at("2026-03-01T10:00:00Z"))
	cj.Status.Active = []corev1.ObjectReference{activeRef(done)}
	cj.Status.LastScheduleTime = &metav1.Time{Time: at("2026-03-01T10:00:00Z")}
	f := newFixture(t, at("2026-03-01T10:02:00Z"), cj, done)
	f.sync()
	st := f.cronJob().Status
	if len(st.Active) != 0 {
		t.Errorf("active %v, want the finished job gone", st.Active)
	}
	if ev := f.events(); !slices.Equal(ev, []string{"Normal SawCompletedJob Saw completed job: cj-1, status: Complete"}) {
		t.Errorf("events %v", ev)
	}
	// As in Kubernetes, the success is recorded by the sync after.
	_ = f.fac.Batch().V1().CronJobs().Informer().GetIndexer().Update(f.cronJob())
	f.sync()
	if st := f.cronJob().Status; st.LastSuccessfulTime == nil || !st.LastSuccessfulTime.Time.Equal(at("2026-03-01T10:01:00Z")) {
		t.Errorf("lastSuccessfulTime %v, want the job's completion", st.LastSuccessfulTime)
	}
}

func TestSyncDropsAnActiveJobThatIsGone(t *testing.T) {
	cj := newCronJob("0 * * * *", at("2026-03-01T09:30:00Z"))
	cj.Status.Active = []corev1.ObjectReference{{Kind: "Job", Namespace: "default", Name: "cj-gone", UID: "uid-gone"}}
	cj.Status.LastScheduleTime = &metav1.Time{Time: at("2026-03-01T10:00:00Z")}
	f := newFixture(t, at("2026-03-01T10:02:00Z"), cj)
	f.sync()
	if st := f.cronJob().Status; len(st.Active) != 0 {
		t.Errorf("active %v", st.Active)
	}
	if ev := f.events(); !slices.Equal(ev, []string{"Normal MissingJob Active job went missing: cj-gone"}) {
		t.Errorf("events %v", ev)
	}
}

func TestSyncKeepsOnlyTheHistoryLimitsOfFinishedJobs(t *testing.T) {
	cj := newCronJob("0 * * * *", at("2026-03-01T05:30:00Z"))
	cj.Spec.SuccessfulJobsHistoryLimit = ptr.To(int32(1))
	cj.Spec.FailedJobsHistoryLimit = ptr.To(int32(1))
	cj.Status.LastScheduleTime = &metav1.Time{Time: at("2026-03-01T10:00:00Z")}
	objs := []runtime.Object{cj,
		childJob(cj, "ok-1", batchv1.JobComplete, at("2026-03-01T06:00:00Z")),
		childJob(cj, "ok-2", batchv1.JobComplete, at("2026-03-01T07:00:00Z")),
		childJob(cj, "ok-3", batchv1.JobComplete, at("2026-03-01T08:00:00Z")),
		childJob(cj, "bad-1", batchv1.JobFailed, at("2026-03-01T09:00:00Z")),
		childJob(cj, "bad-2", batchv1.JobFailed, at("2026-03-01T10:00:00Z")),
	}
	// Another CronJob's job is never touched.
	other := newCronJob("0 * * * *", at("2026-03-01T05:30:00Z"))
	other.UID = "other-uid"
	objs = append(objs, childJob(other, "theirs", batchv1.JobComplete, at("2026-03-01T01:00:00Z")))
	f := newFixture(t, at("2026-03-01T10:02:00Z"), objs...)
	f.sync()
	d := f.deleted()
	slices.Sort(d)
	if !slices.Equal(d, []string{"bad-1", "ok-1", "ok-2"}) {
		t.Errorf("deleted %v, want the oldest beyond the limits", d)
	}
}

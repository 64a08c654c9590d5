package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
)

// shJob is a Job whose pods run script in the test image.
func shJob(name, script string) *batchv1.Job {
	return &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy:                 corev1.RestartPolicyNever,
			TerminationGracePeriodSeconds: ptr(int64(1)),
			Containers:                    []corev1.Container{{Name: "main", Image: testImage, Command: []string{"sh", "-c", script}}},
		}}}}
}

// createJob creates the Job in default and deletes it (and its pods) when
// the test ends.
func createJob(t *testing.T, c kubernetes.Interface, job *batchv1.Job) *batchv1.Job {
	t.Helper()
	created, err := c.BatchV1().Jobs("default").Create(context.Background(), job, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		bg := metav1.DeletePropagationBackground
		err := c.BatchV1().Jobs("default").Delete(context.Background(), job.Name, metav1.DeleteOptions{PropagationPolicy: &bg})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("delete job %s: %v", job.Name, err)
		}
	})
	return created
}

func jobCondition(j *batchv1.Job, t batchv1.JobConditionType) *batchv1.JobCondition {
	for i := range j.Status.Conditions {
		if j.Status.Conditions[i].Type == t && j.Status.Conditions[i].Status == corev1.ConditionTrue {
			return &j.Status.Conditions[i]
		}
	}
	return nil
}

// waitJob waits until the Job has the condition, returning it then.
func waitJob(t *testing.T, c kubernetes.Interface, name string, cond batchv1.JobConditionType, timeout time.Duration) *batchv1.Job {
	t.Helper()
	var job *batchv1.Job
	eventually(t, timeout, func() error {
		j, err := c.BatchV1().Jobs("default").Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		job = j
		if jobCondition(j, cond) == nil {
			return errorf("job %s: no %s condition yet; status %+v", name, cond, j.Status)
		}
		return nil
	})
	return job
}

func jobPods(t *testing.T, c kubernetes.Interface, name string) []corev1.Pod {
	t.Helper()
	list, err := c.CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{LabelSelector: batchv1.JobNameLabel + "=" + name})
	if err != nil {
		t.Fatal(err)
	}
	return list.Items
}

// jobEvents are the reasons of the events recorded for the Job.
func jobEvents(t *testing.T, c kubernetes.Interface, name string) []string {
	t.Helper()
	list, err := c.CoreV1().Events("default").List(context.Background(), metav1.ListOptions{
		FieldSelector: "involvedObject.kind=Job,involvedObject.name=" + name})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range list.Items {
		if e.Source.Component != "job-controller" {
			t.Errorf("event %s of job %s from %q, want job-controller", e.Reason, name, e.Source.Component)
		}
		for range max(e.Count, 1) {
			out = append(out, e.Reason)
		}
	}
	return out
}

func countOf(list []string, s string) int {
	n := 0
	for _, x := range list {
		if x == s {
			n++
		}
	}
	return n
}

// The Job tests share one server; each makes its own Job.
func TestJobController(t *testing.T) {
	_, c := startAgentServer(t)
	t.Run("CompletionsRunWithAtMostParallelismPodsAtOnce", func(t *testing.T) {
		t.Parallel()
		testJobCompletionsAndParallelism(t, c)
	})
	t.Run("FailingPodsExhaustTheBackoffLimitAfterABackOff", func(t *testing.T) {
		t.Parallel()
		testJobBackoffLimit(t, c)
	})
	t.Run("IndexedPodsGetTheirIndexes", func(t *testing.T) {
		t.Parallel()
		testIndexedJob(t, c)
	})
	t.Run("ActiveDeadlineEndsARunningJob", func(t *testing.T) {
		t.Parallel()
		testJobActiveDeadline(t, c)
	})
	t.Run("TTLAfterFinishedDeletesTheJobAndItsPods", func(t *testing.T) {
		t.Parallel()
		testJobTTL(t, c)
	})
}

func testJobCompletionsAndParallelism(t *testing.T, c kubernetes.Interface) {
	ctx := context.Background()
	const name = "five-by-two"
	// Watch the Job's pods from before it exists, counting those Running.
	w, err := c.CoreV1().Pods("default").Watch(ctx, metav1.ListOptions{LabelSelector: batchv1.JobNameLabel + "=" + name})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	var mu sync.Mutex
	phases := map[string]corev1.PodPhase{}
	maxRunning := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			pod, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			mu.Lock()
			if ev.Type == watch.Deleted {
				delete(phases, pod.Name)
			} else {
				phases[pod.Name] = pod.Status.Phase
			}
			running := 0
			for _, ph := range phases {
				if ph == corev1.PodRunning {
					running++
				}
			}
			maxRunning = max(maxRunning, running)
			mu.Unlock()
		}
	}()

	job := shJob(name, "sleep 2")
	job.Spec.Completions, job.Spec.Parallelism = ptr(int32(5)), ptr(int32(2))
	created := createJob(t, c, job)
	done1 := waitJob(t, c, name, batchv1.JobComplete, 120*time.Second)
	w.Stop()
	<-done

	st := done1.Status
	if st.Succeeded != 5 || st.Failed != 0 || st.Active != 0 {
		t.Errorf("status succeeded/failed/active = %d/%d/%d, want 5/0/0", st.Succeeded, st.Failed, st.Active)
	}
	if st.Ready == nil || *st.Ready != 0 || st.Terminating == nil || *st.Terminating != 0 {
		t.Errorf("status ready/terminating = %v/%v, want 0/0", st.Ready, st.Terminating)
	}
	if u := st.UncountedTerminatedPods; u == nil || len(u.Succeeded)+len(u.Failed) != 0 {
		t.Errorf("uncountedTerminatedPods = %+v, want empty", u)
	}
	if st.StartTime == nil || st.CompletionTime == nil || st.CompletionTime.Before(st.StartTime) {
		t.Errorf("startTime %v, completionTime %v", st.StartTime, st.CompletionTime)
	}
	// SuccessCriteriaMet comes first, then Complete, with the same reason.
	var types []batchv1.JobConditionType
	for _, cond := range st.Conditions {
		types = append(types, cond.Type)
		if cond.Reason != batchv1.JobReasonCompletionsReached || cond.Message != "Reached expected number of succeeded pods" {
			t.Errorf("condition %s: reason %q, message %q", cond.Type, cond.Reason, cond.Message)
		}
	}
	if !slices.Equal(types, []batchv1.JobConditionType{batchv1.JobSuccessCriteriaMet, batchv1.JobComplete}) {
		t.Errorf("conditions = %v, want SuccessCriteriaMet then Complete", types)
	}
	mu.Lock()
	if maxRunning > 2 {
		t.Errorf("%d pods ran at once, want at most parallelism 2", maxRunning)
	}
	if maxRunning < 1 {
		t.Errorf("never saw a pod running")
	}
	mu.Unlock()

	pods := jobPods(t, c, name)
	if len(pods) != 5 {
		t.Errorf("%d pods, want 5", len(pods))
	}
	for _, p := range pods {
		if !strings.HasPrefix(p.Name, name+"-") || len(p.Name) != len(name)+6 {
			t.Errorf("pod name %q, want %s-<5 random>", p.Name, name)
		}
		if p.Status.Phase != corev1.PodSucceeded {
			t.Errorf("pod %s: phase %s", p.Name, p.Status.Phase)
		}
		if !metav1.IsControlledBy(&p, created) {
			t.Errorf("pod %s: owners %+v, want the job as controller", p.Name, p.OwnerReferences)
		}
		for k, v := range map[string]string{batchv1.JobNameLabel: name, "job-name": name,
			batchv1.ControllerUidLabel: string(created.UID), "controller-uid": string(created.UID)} {
			if p.Labels[k] != v {
				t.Errorf("pod %s: label %s = %q, want %q", p.Name, k, p.Labels[k], v)
			}
		}
		// Counted: the tracking finalizer is gone.
		if slices.Contains(p.Finalizers, batchv1.JobTrackingFinalizer) {
			t.Errorf("pod %s still has the tracking finalizer", p.Name)
		}
	}
	eventually(t, 10*time.Second, func() error {
		evs := jobEvents(t, c, name)
		if countOf(evs, "SuccessfulCreate") != 5 || countOf(evs, "Completed") != 1 {
			return errorf("events %v, want 5 SuccessfulCreate and Completed", evs)
		}
		return nil
	})
}

func testJobBackoffLimit(t *testing.T, c kubernetes.Interface) {
	const name = "always-fails"
	job := shJob(name, "exit 1")
	job.Spec.BackoffLimit = ptr(int32(1))
	createJob(t, c, job)
	// The second pod waits out the 10s back-off.
	failed := waitJob(t, c, name, batchv1.JobFailed, 90*time.Second)
	st := failed.Status
	if st.Failed != 2 || st.Succeeded != 0 || st.Active != 0 {
		t.Errorf("status failed/succeeded/active = %d/%d/%d, want 2/0/0", st.Failed, st.Succeeded, st.Active)
	}
	if st.CompletionTime != nil {
		t.Errorf("completionTime %v on a failed job", st.CompletionTime)
	}
	for _, ct := range []batchv1.JobConditionType{batchv1.JobFailureTarget, batchv1.JobFailed} {
		cond := jobCondition(failed, ct)
		if cond == nil || cond.Reason != batchv1.JobReasonBackoffLimitExceeded || cond.Message != "Job has reached the specified backoff limit" {
			t.Errorf("%s condition = %+v, want reason BackoffLimitExceeded", ct, cond)
		}
	}
	pods := jobPods(t, c, name)
	if len(pods) != 2 {
		t.Fatalf("%d pods, want 2", len(pods))
	}
	slices.SortFunc(pods, func(a, b corev1.Pod) int { return a.CreationTimestamp.Compare(b.CreationTimestamp.Time) })
	first := pods[0].Status.ContainerStatuses
	if len(first) != 1 || first[0].State.Terminated == nil {
		t.Fatalf("first pod's container: %+v", first)
	}
	if gap := pods[1].CreationTimestamp.Sub(first[0].State.Terminated.FinishedAt.Time); gap < 9*time.Second {
		t.Errorf("second pod made %v after the first failed, want the 10s back-off", gap)
	}
	eventually(t, 10*time.Second, func() error {
		if evs := jobEvents(t, c, name); countOf(evs, "BackoffLimitExceeded") != 1 || countOf(evs, "SuccessfulCreate") != 2 {
			return errorf("events %v, want 2 SuccessfulCreate and BackoffLimitExceeded", evs)
		}
		return nil
	})
}

func testIndexedJob(t *testing.T, c kubernetes.Interface) {
	const name = "indexed"
	// Each pod checks that its JOB_COMPLETION_INDEX is the index its
	// hostname (<job>-<index>) ends with.
	job := shJob(name, `h=$(hostname); [ "$JOB_COMPLETION_INDEX" = "${h##*-}" ] && [ "$h" = "indexed-$JOB_COMPLETION_INDEX" ]`)
	job.Spec.Completions, job.Spec.Parallelism = ptr(int32(3)), ptr(int32(3))
	job.Spec.BackoffLimit = ptr(int32(0))
	job.Spec.CompletionMode = ptr(batchv1.IndexedCompletion)
	createJob(t, c, job)
	done := waitJob(t, c, name, batchv1.JobComplete, 90*time.Second)
	if done.Status.Succeeded != 3 || done.Status.CompletedIndexes != "0-2" {
		t.Errorf("succeeded %d, completedIndexes %q; want 3, 0-2", done.Status.Succeeded, done.Status.CompletedIndexes)
	}
	seen := map[string]bool{}
	for _, p := range jobPods(t, c, name) {
		ix := p.Annotations[batchv1.JobCompletionIndexAnnotation]
		seen[ix] = true
		if p.Labels[batchv1.JobCompletionIndexAnnotation] != ix {
			t.Errorf("pod %s: index label %q, annotation %q", p.Name, p.Labels[batchv1.JobCompletionIndexAnnotation], ix)
		}
		if p.Spec.Hostname != name+"-"+ix {
			t.Errorf("pod %s: hostname %q, want %s-%s", p.Name, p.Spec.Hostname, name, ix)
		}
		if !strings.HasPrefix(p.Name, fmt.Sprintf("%s-%s-", name, ix)) {
			t.Errorf("pod name %q, want %s-%s-<random>", p.Name, name, ix)
		}
		env := p.Spec.Containers[0].Env
		if len(env) != 1 || env[0].Name != "JOB_COMPLETION_INDEX" || env[0].ValueFrom == nil || env[0].ValueFrom.FieldRef == nil ||
			env[0].ValueFrom.FieldRef.FieldPath != "metadata.labels['batch.kubernetes.io/job-completion-index']" {
			t.Errorf("pod %s: env %+v", p.Name, env)
		}
		if p.Status.Phase != corev1.PodSucceeded {
			t.Errorf("pod %s (index %s): phase %s", p.Name, ix, p.Status.Phase)
		}
	}
	if len(seen) != 3 || !seen["0"] || !seen["1"] || !seen["2"] {
		t.Errorf("indexes %v, want 0, 1 and 2", seen)
	}
}

func testJobActiveDeadline(t *testing.T, c kubernetes.Interface) {
	const name = "too-slow"
	job := shJob(name, "sleep 600")
	job.Spec.ActiveDeadlineSeconds = ptr(int64(3))
	createJob(t, c, job)
	failed := waitJob(t, c, name, batchv1.JobFailed, 60*time.Second)
	cond := jobCondition(failed, batchv1.JobFailed)
	if cond.Reason != batchv1.JobReasonDeadlineExceeded || cond.Message != "Job was active longer than specified deadline" {
		t.Errorf("Failed condition %+v, want DeadlineExceeded", cond)
	}
	if failed.Status.Active != 0 || failed.Status.Failed != 1 {
		t.Errorf("active %d, failed %d; want 0, 1", failed.Status.Active, failed.Status.Failed)
	}
	eventually(t, 10*time.Second, func() error {
		if evs := jobEvents(t, c, name); countOf(evs, "DeadlineExceeded") != 1 || countOf(evs, "SuccessfulDelete") != 1 {
			return errorf("events %v, want SuccessfulDelete and DeadlineExceeded", evs)
		}
		return nil
	})
}

func testJobTTL(t *testing.T, c kubernetes.Interface) {
	ctx := context.Background()
	const name = "short-lived"
	job := shJob(name, "true")
	job.Spec.TTLSecondsAfterFinished = ptr(int32(2))
	createJob(t, c, job)
	done := waitJob(t, c, name, batchv1.JobComplete, 60*time.Second)
	finished := jobCondition(done, batchv1.JobComplete).LastTransitionTime
	eventually(t, 60*time.Second, func() error {
		_, err := c.BatchV1().Jobs("default").Get(ctx, name, metav1.GetOptions{})
		if !apierrors.IsNotFound(err) {
			return errorf("job still there (err %v)", err)
		}
		if pods := jobPods(t, c, name); len(pods) != 0 {
			return errorf("%d pods left", len(pods))
		}
		return nil
	})
	if gone := time.Since(finished.Time); gone < 2*time.Second {
		t.Errorf("job deleted %v after it finished, before its 2s ttl", gone)
	}
}

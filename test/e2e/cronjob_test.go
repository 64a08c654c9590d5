package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The schedule logic is tested against a fake clock inside the cronjob
// package; this checks the wiring with the real clock: the first Job of an
// every-minute CronJob comes within a minute and runs to completion.
func TestCronJobStartsAJobEveryMinute(t *testing.T) {
	s, c := startAgentServer(t)
	ctx := context.Background()
	cj := &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: "every-minute"},
		Spec: batchv1.CronJobSpec{
			Schedule: "* * * * *",
			JobTemplate: batchv1.JobTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "tick"}},
				Spec:       shJob("", "echo tick").Spec,
			},
		},
	}
	cj, err := c.BatchV1().CronJobs("default").Create(ctx, cj, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		bg := metav1.DeletePropagationBackground
		if err := c.BatchV1().CronJobs("default").Delete(context.Background(), cj.Name, metav1.DeleteOptions{PropagationPolicy: &bg}); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("delete cronjob: %v", err)
		}
	})

	var job batchv1.Job
	eventually(t, 70*time.Second, func() error {
		list, err := c.BatchV1().Jobs("default").List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		if len(list.Items) == 0 {
			return errorf("no job yet")
		}
		job = list.Items[0]
		return nil
	})
	// Named after the scheduled minute, which the annotation gives in UTC
	// (the CronJob names no time zone).
	scheduled, err := time.Parse(time.RFC3339, job.Annotations[batchv1.CronJobScheduledTimestampAnnotation])
	if err != nil {
		t.Fatalf("scheduled-timestamp annotation: %v (annotations %v)", err, job.Annotations)
	}
	if scheduled.Second() != 0 || scheduled.Location() != time.UTC || scheduled.Before(cj.CreationTimestamp.Time) {
		t.Errorf("scheduled at %v, want a whole minute in UTC after the cronjob was made (%v)", scheduled, cj.CreationTimestamp)
	}
	if want := fmt.Sprintf("every-minute-%d", scheduled.Unix()/60); job.Name != want {
		t.Errorf("job name %q, want %q", job.Name, want)
	}
	if !metav1.IsControlledBy(&job, cj) || job.Labels["app"] != "tick" {
		t.Errorf("job owners %+v, labels %v", job.OwnerReferences, job.Labels)
	}

	// The Job runs; the CronJob sees it finish.
	waitJob(t, c, job.Name, batchv1.JobComplete, 60*time.Second)
	eventually(t, 30*time.Second, func() error {
		got, err := c.BatchV1().CronJobs("default").Get(ctx, cj.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		st := got.Status
		if st.LastScheduleTime == nil || !st.LastScheduleTime.Time.Equal(scheduled) {
			return errorf("lastScheduleTime %v, want %v", st.LastScheduleTime, scheduled)
		}
		if st.LastSuccessfulTime == nil {
			return errorf("no lastSuccessfulTime yet; status %+v", st)
		}
		for _, ref := range st.Active {
			if ref.UID == job.UID {
				return errorf("finished job %s still active", job.Name)
			}
		}
		return nil
	})
	eventually(t, 10*time.Second, func() error {
		list, err := c.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.kind=CronJob,involvedObject.name=every-minute"})
		if err != nil {
			return err
		}
		var seen []string
		for _, e := range list.Items {
			seen = append(seen, e.Reason+": "+e.Message)
		}
		all := strings.Join(seen, "\n")
		if !strings.Contains(all, "SuccessfulCreate: Created job "+job.Name) || !strings.Contains(all, "SawCompletedJob: Saw completed job: "+job.Name+", status: Complete") {
			return errorf("events:\n%s", all)
		}
		return nil
	})
	out := s.mustKubectl("get", "cronjob", "every-minute")
	contains(t, "get cronjob", out, "* * * * *", "False")
}

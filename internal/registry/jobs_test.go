package registry

import (
	"maps"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// testJob is a Job as kubectl create job sends it: no selector, no labels.
func testJob() *batchv1.Job {
	tmpl := webTemplate(corev1.RestartPolicyNever)
	tmpl.Labels = nil
	return &batchv1.Job{ObjectMeta: testMeta("pi"), Spec: batchv1.JobSpec{Template: tmpl}}
}

func TestJobDefaults(t *testing.T) {
	j := testJob()
	jobs().Default(j)
	s := j.Spec
	if *s.Parallelism != 1 || *s.Completions != 1 || *s.BackoffLimit != 6 {
		t.Errorf("parallelism %d, completions %d, backoffLimit %d; want 1, 1, 6", *s.Parallelism, *s.Completions, *s.BackoffLimit)
	}
	if *s.CompletionMode != batchv1.NonIndexedCompletion || *s.Suspend || *s.PodReplacementPolicy != batchv1.TerminatingOrFailed {
		t.Errorf("completionMode %s, suspend %t, podReplacementPolicy %s", *s.CompletionMode, *s.Suspend, *s.PodReplacementPolicy)
	}
	if s.Template.Spec.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("restartPolicy changed to %q", s.Template.Spec.RestartPolicy)
	}

	// Parallelism alone means "until one pod succeeds": completions stays unset.
	work := testJob()
	work.Spec.Parallelism = new(int32(3))
	jobs().Default(work)
	if work.Spec.Completions != nil {
		t.Errorf("completions = %d, want unset", *work.Spec.Completions)
	}

	withPolicy := testJob()
	withPolicy.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{}
	jobs().Default(withPolicy)
	if *withPolicy.Spec.PodReplacementPolicy != batchv1.Failed {
		t.Errorf("podReplacementPolicy with a pod failure policy = %s, want Failed", *withPolicy.Spec.PodReplacementPolicy)
	}
}

func TestJobSelectorIsGeneratedFromUID(t *testing.T) {
	j := testJob()
	if errs := createErrors(jobs(), j); len(errs) > 0 {
		t.Fatalf("job rejected: %v", errs)
	}
	uid := string(j.UID)
	wantLabels := map[string]string{
		"batch.kubernetes.io/controller-uid": uid,
		"batch.kubernetes.io/job-name":       "pi",
		"controller-uid":                     uid,
		"job-name":                           "pi",
	}
	if !maps.Equal(j.Spec.Template.Labels, wantLabels) {
		t.Errorf("template labels = %v, want %v", j.Spec.Template.Labels, wantLabels)
	}
	if want := map[string]string{"batch.kubernetes.io/controller-uid": uid}; !maps.Equal(j.Spec.Selector.MatchLabels, want) {
		t.Errorf("selector = %v, want %v", j.Spec.Selector.MatchLabels, want)
	}
	if !maps.Equal(j.Labels, wantLabels) {
		t.Errorf("job labels = %v, want the template's", j.Labels)
	}

	// Changing a generated label afterwards breaks the link to the pods.
	j.Spec.Template.Labels["controller-uid"] = "someone-else"
	errs := jobs().Validate(j)
	if findFieldError(errs, "spec.template.metadata.labels[controller-uid]", field.ErrorTypeInvalid, "must be '"+uid+"'") == nil {
		t.Errorf("tampered label accepted: %v", errs)
	}
}

func TestJobLabelsFollowTheTemplateUnlessSet(t *testing.T) {
	labelled := testJob()
	labelled.Spec.Template.Labels = map[string]string{"app": "pi"}
	if errs := createErrors(jobs(), labelled); len(errs) > 0 {
		t.Fatalf("job rejected: %v", errs)
	}
	if labelled.Labels["app"] != "pi" || labelled.Labels["job-name"] != "pi" {
		t.Errorf("job labels = %v, want the template's, generated ones included", labelled.Labels)
	}

	own := testJob()
	own.Labels = map[string]string{"team": "batch"}
	if errs := createErrors(jobs(), own); len(errs) > 0 {
		t.Fatalf("job rejected: %v", errs)
	}
	if !maps.Equal(own.Labels, map[string]string{"team": "batch"}) {
		t.Errorf("job labels = %v, want the client's own", own.Labels)
	}
}

func TestJobWithManualSelectorKeepsItsOwn(t *testing.T) {
	j := testJob()
	j.Spec.ManualSelector = new(true)
	j.Spec.Selector = webSelector()
	j.Spec.Template.Labels = map[string]string{"app": "web"}
	if errs := createErrors(jobs(), j); len(errs) > 0 {
		t.Fatalf("job rejected: %v", errs)
	}
	if !maps.Equal(j.Spec.Template.Labels, map[string]string{"app": "web"}) {
		t.Errorf("template labels changed to %v", j.Spec.Template.Labels)
	}
}

func TestJobValidation(t *testing.T) {
	always := testJob()
	always.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyAlways

	negative := testJob()
	negative.Spec.Parallelism = new(int32(-2))

	indexedWithoutCompletions := testJob()
	indexedWithoutCompletions.Spec.CompletionMode = new(batchv1.IndexedCompletion)
	indexedWithoutCompletions.Spec.Parallelism = new(int32(2))

	runCheckCases(t, []checkCase{
		{"jobs never restart Always", jobs(), always,
			"spec.template.spec.restartPolicy", field.ErrorTypeRequired, `valid values: "OnFailure", "Never"`},
		{"parallelism not negative", jobs(), negative, "spec.parallelism", field.ErrorTypeInvalid, "must be greater than or equal to 0"},
		{"indexed needs completions", jobs(), indexedWithoutCompletions,
			"spec.completions", field.ErrorTypeRequired, "when completion mode is Indexed"},
	})
}

func TestJobUpdateKeepsSelectorAndCompletions(t *testing.T) {
	created := testJob()
	if errs := createErrors(jobs(), created); len(errs) > 0 {
		t.Fatalf("job rejected: %v", errs)
	}

	more := created.DeepCopy()
	more.Spec.Completions = new(int32(5))
	if errs := updateErrors(jobs(), more, created); findFieldError(errs, "spec.completions", field.ErrorTypeInvalid, "field is immutable") == nil {
		t.Errorf("completions change accepted: %v", errs)
	}

	reselected := created.DeepCopy()
	reselected.Spec.Selector.MatchLabels["extra"] = "x"
	reselected.Spec.Template.Labels["extra"] = "x"
	if errs := updateErrors(jobs(), reselected, created); findFieldError(errs, "spec.selector", field.ErrorTypeInvalid, "field is immutable") == nil {
		t.Errorf("selector change accepted: %v", errs)
	}

	// A suspended job that never ran may still be steered to other nodes.
	suspended := created.DeepCopy()
	suspended.Spec.Suspend = new(true)
	moved := suspended.DeepCopy()
	moved.Spec.Template.Spec.NodeSelector = map[string]string{"pool": "batch"}
	if errs := updateErrors(jobs(), moved, suspended); len(errs) > 0 {
		t.Errorf("node selector change of a suspended job rejected: %v", errs)
	}
	running := created.DeepCopy()
	running.Spec.Template.Spec.NodeSelector = map[string]string{"pool": "batch"}
	if errs := updateErrors(jobs(), running, created); findFieldError(errs, "spec.template", field.ErrorTypeInvalid, "field is immutable") == nil {
		t.Errorf("template change of a running job accepted: %v", errs)
	}
}

func TestJobTableCells(t *testing.T) {
	started := metav1.NewTime(time.Now().Add(-90 * time.Second))
	finished := metav1.NewTime(started.Add(30 * time.Second))
	condition := func(t batchv1.JobConditionType) []batchv1.JobCondition {
		return []batchv1.JobCondition{{Type: t, Status: corev1.ConditionTrue}}
	}

	for _, tc := range []struct {
		name                          string
		mutate                        func(*batchv1.Job)
		status, completions, duration string
	}{
		{"running", func(j *batchv1.Job) { j.Status.StartTime = &started }, "Running", "0/1", "90s"},
		{"complete", func(j *batchv1.Job) {
			j.Status = batchv1.JobStatus{Succeeded: 1, StartTime: &started, CompletionTime: &finished, Conditions: condition(batchv1.JobComplete)}
		}, "Complete", "1/1", "30s"},
		{"failed", func(j *batchv1.Job) { j.Status.Conditions = condition(batchv1.JobFailed) }, "Failed", "0/1", ""},
		{"suspended", func(j *batchv1.Job) { j.Status.Conditions = condition(batchv1.JobSuspended) }, "Suspended", "0/1", ""},
		{"work queue", func(j *batchv1.Job) { j.Spec.Completions, j.Spec.Parallelism = nil, new(int32(3)) }, "Running", "0/1 of 3", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := testJob()
			jobs().Default(j)
			tc.mutate(j)
			cells := jobs().Table.Cells(j)
			if cells[0] != tc.status || cells[1] != tc.completions || cells[2] != tc.duration {
				t.Errorf("status, completions, duration = %v, %v, %v; want %s, %s, %s",
					cells[0], cells[1], cells[2], tc.status, tc.completions, tc.duration)
			}
		})
	}
}

func TestJobsSelectableBySuccesses(t *testing.T) {
	j := testJob()
	j.Status.Succeeded = 2
	if got := jobs().Fields(j)["status.successful"]; got != "2" {
		t.Errorf("status.successful = %q, want 2", got)
	}
}

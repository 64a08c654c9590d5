package registry

import (
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func testCronJob() *batchv1.CronJob {
	tmpl := webTemplate(corev1.RestartPolicyOnFailure)
	tmpl.Labels = nil
	return &batchv1.CronJob{
		ObjectMeta: testMeta("nightly"),
		Spec: batchv1.CronJobSpec{
			Schedule:    "0 3 * * *",
			JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: tmpl}},
		},
	}
}

func TestCronJobDefaults(t *testing.T) {
	cj := testCronJob()
	cronjobs().Default(cj)
	s := cj.Spec
	if s.ConcurrencyPolicy != batchv1.AllowConcurrent || *s.Suspend || *s.SuccessfulJobsHistoryLimit != 3 || *s.FailedJobsHistoryLimit != 1 {
		t.Errorf("concurrencyPolicy %s, suspend %t, history %d/%d; want Allow, false, 3/1",
			s.ConcurrencyPolicy, *s.Suspend, *s.SuccessfulJobsHistoryLimit, *s.FailedJobsHistoryLimit)
	}
	// The template is a Job's spec only once the controller makes the Job.
	if s.JobTemplate.Spec.BackoffLimit != nil || s.JobTemplate.Spec.Completions != nil {
		t.Errorf("job template defaulted as a Job: %+v", s.JobTemplate.Spec)
	}
}

func TestCronJobValidation(t *testing.T) {
	noSchedule := testCronJob()
	noSchedule.Spec.Schedule = ""

	badMinute := testCronJob()
	badMinute.Spec.Schedule = "61 * * * *"

	longName := testCronJob()
	longName.Name = strings.Repeat("a", 53)

	withSelector := testCronJob()
	withSelector.Spec.JobTemplate.Spec.Selector = webSelector()

	inlineZone := testCronJob()
	inlineZone.Spec.Schedule = "TZ=Europe/Paris 0 3 * * *"

	runCheckCases(t, []checkCase{
		{"schedule required", cronjobs(), noSchedule, "spec.schedule", field.ErrorTypeRequired, ""},
		{"schedule in range", cronjobs(), badMinute, "spec.schedule", field.ErrorTypeInvalid, "end of range (61) above maximum (59): 61"},
		{"room for the job suffix", cronjobs(), longName, "metadata.name", field.ErrorTypeInvalid, "must be no more than 52 characters"},
		{"selector generated per job", cronjobs(), withSelector,
			"spec.jobTemplate.spec.selector", field.ErrorTypeInvalid, "`selector` will be auto-generated"},
		{"time zone field, not TZ=", cronjobs(), inlineZone,
			"spec.schedule", field.ErrorTypeInvalid, "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"},
	})
}

func TestCronScheduleSyntax(t *testing.T) {
	for _, tc := range []struct {
		schedule string
		err      string // empty: valid
	}{
		{"*/5 * * * *", ""},
		{"0 9-17/2 * JAN,jul mon-fri", ""},
		{"5/15 * * * ?", ""},
		{"0 0 1 1 0", ""},
		{"@hourly", ""},
		{"@every 1h30m", ""},
		{"* * * *", "expected exactly 5 fields, found 4: [* * * *]"},
		{"0 0 * * * *", "expected exactly 5 fields, found 6"},
		{"0 24 * * *", "end of range (24) above maximum (23): 24"},
		{"0 0 0 * *", "beginning of range (0) below minimum (1): 0"},
		{"0 0 * * 5-1", "beginning of range (5) beyond end of range (1): 5-1"},
		{"*/0 * * * *", "step of range should be a positive number: */0"},
		{"1-2-3 * * * *", "too many hyphens: 1-2-3"},
		{"x * * * *", "failed to parse int from x"},
		{"@fortnightly", "unrecognized descriptor: @fortnightly"},
		{"@every soon", "failed to parse duration @every soon"},
	} {
		t.Run(tc.schedule, func(t *testing.T) {
			err := checkCronSchedule(tc.schedule)
			switch {
			case tc.err == "" && err != nil:
				t.Errorf("rejected: %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Errorf("error = %v, want %q", err, tc.err)
			}
		})
	}
}

func TestCronJobTableCells(t *testing.T) {
	cj := testCronJob()
	cronjobs().Default(cj)
	cj.Status.Active = make([]corev1.ObjectReference, 2)
	cells := cronjobs().Table.Cells(cj)
	if cells[0] != "0 3 * * *" || cells[1] != "<none>" || cells[2] != "False" || cells[3] != int64(2) || cells[4] != "<none>" {
		t.Errorf("schedule, timezone, suspend, active, last schedule = %v", cells[:5])
	}
}

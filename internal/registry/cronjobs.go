package registry

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// maxCronJobNameLength leaves room in the 63-character Job name for the
// "-<minutes since epoch>" suffix the CronJob controller appends.
const maxCronJobNameLength = 52

func cronjobs() *Resource {
	return &Resource{
		GroupVersionResource: schema.GroupVersionResource{Group: "batch", Version: "v1", Resource: "cronjobs"},
		Kind:                 "CronJob",
		SingularName:         "cronjob",
		Namespaced:           true,
		ShortNames:           []string{"cj"},
		Categories:           []string{"all"},
		New:                  func() runtime.Object { return &batchv1.CronJob{} },
		NewList:              func() runtime.Object { return &batchv1.CronJobList{} },
		Status:               true,
		Default:              func(obj runtime.Object) { defaultCronJob(obj.(*batchv1.CronJob)) },
		PrepareForCreate: func(obj runtime.Object) {
			obj.(*batchv1.CronJob).Status = batchv1.CronJobStatus{}
		},
		Validate: func(obj runtime.Object) field.ErrorList { return validateCronJob(obj.(*batchv1.CronJob)) },
		ValidateUpdate: func(obj, old runtime.Object) field.ErrorList {
			return validateObjectMetaUpdate(&obj.(*batchv1.CronJob).ObjectMeta, &old.(*batchv1.CronJob).ObjectMeta)
		},
		Table: &Table{
			Columns: []metav1.TableColumnDefinition{
				{Name: "Schedule", Type: "string", Description: "The schedule in Cron format."},
				{Name: "Timezone", Type: "string", Description: "Time zone the schedule is read in."},
				{Name: "Suspend", Type: "boolean", Description: "Whether new runs are suspended."},
				{Name: "Active", Type: "integer", Description: "Number of jobs running now."},
				{Name: "Last Schedule", Type: "string", Description: "Time since a job was last scheduled."},
				ageColumn(), colContainers, colImages, colSelector,
			},
			Cells: func(obj runtime.Object) []any { return cronJobCells(obj.(*batchv1.CronJob)) },
		},
	}
}

// defaultCronJob applies batch/v1 defaulting. The job template's own spec
// is not defaulted as a Job would be; only its pod template is.
func defaultCronJob(cj *batchv1.CronJob) {
	spec := &cj.Spec
	if spec.ConcurrencyPolicy == "" {
		spec.ConcurrencyPolicy = batchv1.AllowConcurrent
	}
	if spec.Suspend == nil {
		spec.Suspend = new(false)
	}
	if spec.SuccessfulJobsHistoryLimit == nil {
		spec.SuccessfulJobsHistoryLimit = new(int32(3))
	}
	if spec.FailedJobsHistoryLimit == nil {
		spec.FailedJobsHistoryLimit = new(int32(1))
	}
	defaultPodSpec(&spec.JobTemplate.Spec.Template.Spec)
}

// validateCronJob checks a CronJob on create and update.
func validateCronJob(cj *batchv1.CronJob) field.ErrorList {
	errs := validateObjectMeta(&cj.ObjectMeta, true, nameIsDNSSubdomain)
	if len(cj.Name) > maxCronJobNameLength {
		errs = append(errs, field.Invalid(field.NewPath("metadata", "name"), cj.Name,
			fmt.Sprintf("must be no more than %d characters", maxCronJobNameLength)))
	}
	spec, path := &cj.Spec, field.NewPath("spec")

	if spec.Schedule == "" {
		errs = append(errs, field.Required(path.Child("schedule"), ""))
	} else {
		if err := checkCronSchedule(spec.Schedule); err != nil {
			errs = append(errs, field.Invalid(path.Child("schedule"), spec.Schedule, err.Error()))
		}
		if strings.Contains(spec.Schedule, "TZ") {
			errs = append(errs, field.Invalid(path.Child("schedule"), spec.Schedule,
				"cannot use TZ or CRON_TZ in schedule, use timeZone field instead"))
		}
	}
	errs = append(errs, validateOptionalNonnegative(spec.StartingDeadlineSeconds, path.Child("startingDeadlineSeconds"))...)
	errs = append(errs, validateTimeZone(spec.TimeZone, path.Child("timeZone"))...)

	switch spec.ConcurrencyPolicy {
	case batchv1.AllowConcurrent, batchv1.ForbidConcurrent, batchv1.ReplaceConcurrent:
	case "":
		errs = append(errs, field.Required(path.Child("concurrencyPolicy"), ""))
	default:
		errs = append(errs, field.NotSupported(path.Child("concurrencyPolicy"), spec.ConcurrencyPolicy,
			[]batchv1.ConcurrencyPolicy{batchv1.AllowConcurrent, batchv1.ForbidConcurrent, batchv1.ReplaceConcurrent}))
	}

	jobPath := path.Child("jobTemplate", "spec")
	errs = append(errs, validateJobSpec(&spec.JobTemplate.Spec, jobPath)...)
	// Each Job the CronJob makes gets a selector generated from its own uid.
	if spec.JobTemplate.Spec.Selector != nil {
		errs = append(errs, field.Invalid(jobPath.Child("selector"), spec.JobTemplate.Spec.Selector, "`selector` will be auto-generated"))
	}
	if m := spec.JobTemplate.Spec.ManualSelector; m != nil && *m {
		errs = append(errs, field.NotSupported(jobPath.Child("manualSelector"), m, []string{"nil", "false"}))
	}

	errs = append(errs, validateOptionalNonnegative(spec.SuccessfulJobsHistoryLimit, path.Child("successfulJobsHistoryLimit"))...)
	errs = append(errs, validateOptionalNonnegative(spec.FailedJobsHistoryLimit, path.Child("failedJobsHistoryLimit"))...)
	return errs
}

// timeZonePart is one component of an IANA zone name, such as "New_York".
// Digits and "+" are tolerated for legacy names like "Etc/GMT+5".
var timeZonePart = regexp.MustCompile(`^[A-Za-z.\-_0-9+]{1,14}$`)

// validateTimeZone checks spec.timeZone: unset, or an IANA zone this
// machine knows.
func validateTimeZone(tz *string, path *field.Path) field.ErrorList {
	if tz == nil {
		return nil
	}
	if *tz == "" {
		return field.ErrorList{field.Invalid(path, *tz, "timeZone must be nil or non-empty string")}
	}
	// Checked before loading so that a path like "../x" never reaches the
	// zoneinfo lookup.
	for _, part := range strings.Split(*tz, "/") {
		if part == "." || part == ".." || strings.HasPrefix(part, "-") || !timeZonePart.MatchString(part) {
			return field.ErrorList{field.Invalid(path, *tz, "unknown time zone "+*tz)}
		}
	}
	if strings.EqualFold(*tz, "Local") {
		return field.ErrorList{field.Invalid(path, *tz, "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones")}
	}
	if _, err := time.LoadLocation(*tz); err != nil {
		return field.ErrorList{field.Invalid(path, *tz, err.Error())}
	}
	return nil
}

// cronField is one of the five fields of a standard cron schedule.
type cronField struct {
	min, max int
	names    map[string]int // month and weekday names, lower case
}

var cronFields = []cronField{
	{min: 0, max: 59}, // minute
	{min: 0, max: 23}, // hour
	{min: 1, max: 31}, // day of month
	{min: 1, max: 12, names: map[string]int{
		"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
		"jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12,
	}},
	{min: 0, max: 6, names: map[string]int{
		"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6,
	}},
}

// cronDescriptors are the schedules that may stand in for the five fields.
var cronDescriptors = map[string]bool{
	"@yearly": true, "@annually": true, "@monthly": true, "@weekly": true,
	"@daily": true, "@midnight": true, "@hourly": true,
}

// checkCronSchedule checks a schedule the way the CronJob controller will
// read it: five fields (minute, hour, day of month, month, day of week) of
// lists, ranges and steps, or a descriptor such as @hourly or @every 1h30m.
// The errors are worded as Kubernetes' cron parser words them.
func checkCronSchedule(schedule string) error {
	// A leading TZ=/CRON_TZ= is rejected separately with a clearer message.
	if strings.HasPrefix(schedule, "TZ=") || strings.HasPrefix(schedule, "CRON_TZ=") {
		_, rest, _ := strings.Cut(schedule, " ")
		schedule = strings.TrimSpace(rest)
	}
	if schedule == "" {
		return fmt.Errorf("empty spec string")
	}
	if strings.HasPrefix(schedule, "@") {
		if every, ok := strings.CutPrefix(schedule, "@every "); ok {
			if _, err := time.ParseDuration(every); err != nil {
				return fmt.Errorf("failed to parse duration %s: %s", schedule, err)
			}
			return nil
		}
		if !cronDescriptors[schedule] {
			return fmt.Errorf("unrecognized descriptor: %s", schedule)
		}
		return nil
	}
	parts := strings.Fields(schedule)
	if len(parts) != len(cronFields) {
		return fmt.Errorf("expected exactly %d fields, found %d: %s", len(cronFields), len(parts), parts)
	}
	for i, part := range parts {
		for _, expr := range strings.Split(part, ",") {
			if err := cronFields[i].check(expr); err != nil {
				return err
			}
		}
	}
	return nil
}

// check checks one list element of a field: "*", "?", "n", "a-b", each
// optionally followed by "/step".
func (f cronField) check(expr string) error {
	rangePart, stepPart, hasStep := strings.Cut(expr, "/")
	if strings.Contains(stepPart, "/") {
		return fmt.Errorf("too many slashes: %s", expr)
	}
	start, end := f.min, f.max
	if rangePart != "*" && rangePart != "?" {
		bounds := strings.Split(rangePart, "-")
		if len(bounds) > 2 {
			return fmt.Errorf("too many hyphens: %s", expr)
		}
		var err error
		if start, err = f.value(bounds[0]); err != nil {
			return err
		}
		end = start
		if len(bounds) == 2 {
			if end, err = f.value(bounds[1]); err != nil {
				return err
			}
		} else if hasStep {
			// "5/15" means from 5 to the end, every 15.
			end = f.max
		}
	}
	step := 1
	if hasStep {
		var err error
		if step, err = parseCronInt(stepPart); err != nil {
			return err
		}
	}
	switch {
	case start < f.min:
		return fmt.Errorf("beginning of range (%d) below minimum (%d): %s", start, f.min, expr)
	case end > f.max:
		return fmt.Errorf("end of range (%d) above maximum (%d): %s", end, f.max, expr)
	case start > end:
		return fmt.Errorf("beginning of range (%d) beyond end of range (%d): %s", start, end, expr)
	case step == 0:
		return fmt.Errorf("step of range should be a positive number: %s", expr)
	}
	return nil
}

// value reads a number or, for months and weekdays, a three-letter name.
func (f cronField) value(s string) (int, error) {
	if n, ok := f.names[strings.ToLower(s)]; ok {
		return n, nil
	}
	return parseCronInt(s)
}

func parseCronInt(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("failed to parse int from %s: %w", s, err)
	}
	if n < 0 {
		return 0, fmt.Errorf("negative number (%d) not allowed: %s", n, s)
	}
	return n, nil
}

// cronJobCells is what kubectl get cronjob shows: schedule, time zone,
// suspension, active jobs, last schedule and age; wide adds the job
// template's containers, images and selector.
func cronJobCells(cj *batchv1.CronJob) []any {
	timeZone := "<none>"
	if cj.Spec.TimeZone != nil {
		timeZone = *cj.Spec.TimeZone
	}
	suspend := "<unset>"
	if cj.Spec.Suspend != nil {
		suspend = "False"
		if *cj.Spec.Suspend {
			suspend = "True"
		}
	}
	lastSchedule := "<none>"
	if cj.Status.LastScheduleTime != nil {
		lastSchedule = age(*cj.Status.LastScheduleTime)
	}
	job := &cj.Spec.JobTemplate.Spec
	names, images := cellContainers(&job.Template.Spec)
	return []any{
		cj.Spec.Schedule, timeZone, suspend, int64(len(cj.Status.Active)), lastSchedule,
		age(cj.CreationTimestamp),
		names, images, metav1.FormatLabelSelector(job.Selector),
	}
}

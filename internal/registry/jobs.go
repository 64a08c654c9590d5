package registry

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/duration"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// The labels that tie a Job's pods to it when the selector is generated.
// Kubernetes sets both the prefixed labels and their legacy unprefixed
// forms, which older clients still select on.
const (
	legacyJobNameLabel       = "job-name"
	legacyControllerUIDLabel = "controller-uid"
)

// maxIndexedJobParallelism caps Indexed Jobs, bounding the length of
// status.completedIndexes.
const maxIndexedJobParallelism = 100000

func jobs() *Resource {
	return &Resource{
		GroupVersionResource: schema.GroupVersionResource{Group: "batch", Version: "v1", Resource: "jobs"},
		Kind:                 "Job",
		SingularName:         "job",
		Namespaced:           true,
		ShortNames:           nil,
		Categories:           []string{"all"},
		New:                  func() runtime.Object { return &batchv1.Job{} },
		NewList:              func() runtime.Object { return &batchv1.JobList{} },
		Status:               true,
		Default:              func(obj runtime.Object) { defaultJob(obj.(*batchv1.Job)) },
		PrepareForCreate:     func(obj runtime.Object) { prepareJob(obj.(*batchv1.Job)) },
		Validate:             func(obj runtime.Object) field.ErrorList { return validateJob(obj.(*batchv1.Job)) },
		ValidateUpdate: func(obj, old runtime.Object) field.ErrorList {
			return validateJobUpdate(obj.(*batchv1.Job), old.(*batchv1.Job))
		},
		Fields: func(obj runtime.Object) fields.Set {
			return fields.Set{"status.successful": strconv.Itoa(int(obj.(*batchv1.Job).Status.Succeeded))}
		},
		Table: &Table{
			Columns: []metav1.TableColumnDefinition{
				{Name: "Status", Type: "string", Description: "Status of the job."},
				{Name: "Completions", Type: "string", Description: "Succeeded pods out of the desired completions."},
				{Name: "Duration", Type: "string", Description: "Time the job took, or has taken so far."},
				ageColumn(), colContainers, colImages, colSelector,
			},
			Cells: func(obj runtime.Object) []any { return jobCells(obj.(*batchv1.Job)) },
		},
	}
}

// defaultJob applies batch/v1 defaulting.
func defaultJob(j *batchv1.Job) {
	spec := &j.Spec
	// A job that sets neither runs one pod to one completion; one that sets
	// only parallelism runs until any pod succeeds (completions stays nil).
	if spec.Completions == nil && spec.Parallelism == nil {
		spec.Completions = new(int32(1))
	}
	if spec.Parallelism == nil {
		spec.Parallelism = new(int32(1))
	}
	if spec.BackoffLimit == nil {
		if spec.BackoffLimitPerIndex != nil {
			// Per-index limits take over; the global one no longer applies.
			spec.BackoffLimit = new(int32(math.MaxInt32))
		} else {
			spec.BackoffLimit = new(int32(6))
		}
	}
	if len(j.Labels) == 0 && spec.Template.Labels != nil {
		j.Labels = maps.Clone(spec.Template.Labels)
	}
	if spec.CompletionMode == nil {
		spec.CompletionMode = new(batchv1.NonIndexedCompletion)
	}
	if spec.Suspend == nil {
		spec.Suspend = new(false)
	}
	if spec.PodReplacementPolicy == nil {
		// With a pod failure policy the job must see pods fail before it
		// replaces them.
		if spec.PodFailurePolicy != nil {
			spec.PodReplacementPolicy = new(batchv1.Failed)
		} else {
			spec.PodReplacementPolicy = new(batchv1.TerminatingOrFailed)
		}
	}
	defaultPodSpec(&spec.Template.Spec)
}

// prepareJob clears the status of a new Job and, unless the client manages
// the selector itself, generates one from the Job's uid so that the Job
// never adopts another controller's pods.
func prepareJob(j *batchv1.Job) {
	j.Status = batchv1.JobStatus{}
	if j.Spec.ManualSelector != nil && *j.Spec.ManualSelector || j.UID == "" {
		return
	}
	tmpl := &j.Spec.Template
	// Kubernetes' defaulting gives a Job without labels its template's label
	// map itself, so the labels generated below show on the Job too.
	mirrored := len(j.Labels) == 0 || maps.Equal(j.Labels, tmpl.Labels)
	if tmpl.Labels == nil {
		tmpl.Labels = map[string]string{}
	}
	// Labels the client set are kept; a conflicting value is rejected by
	// validation rather than overwritten here.
	for key, value := range map[string]string{
		legacyJobNameLabel:         j.Name,
		batchv1.JobNameLabel:       j.Name,
		legacyControllerUIDLabel:   string(j.UID),
		batchv1.ControllerUidLabel: string(j.UID),
	} {
		if _, ok := tmpl.Labels[key]; !ok {
			tmpl.Labels[key] = value
		}
	}
	if j.Spec.Selector == nil {
		j.Spec.Selector = &metav1.LabelSelector{}
	}
	if j.Spec.Selector.MatchLabels == nil {
		j.Spec.Selector.MatchLabels = map[string]string{}
	}
	if _, ok := j.Spec.Selector.MatchLabels[batchv1.ControllerUidLabel]; !ok {
		j.Spec.Selector.MatchLabels[batchv1.ControllerUidLabel] = string(j.UID)
	}
	if mirrored {
		j.Labels = maps.Clone(tmpl.Labels)
	}
}

// validateJob checks a Job on create and update.
func validateJob(j *batchv1.Job) field.ErrorList {
	errs := validateObjectMeta(&j.ObjectMeta, true, nameIsDNSSubdomain)
	errs = append(errs, validateGeneratedJobSelector(j)...)
	path := field.NewPath("spec")
	errs = append(errs, validateJobSpec(&j.Spec, path)...)
	if j.Spec.Selector == nil {
		errs = append(errs, field.Required(path.Child("selector"), ""))
	} else {
		errs = append(errs, metav1validation.ValidateLabelSelector(j.Spec.Selector,
			metav1validation.LabelSelectorValidationOptions{}, path.Child("selector"))...)
	}
	if selector, err := metav1.LabelSelectorAsSelector(j.Spec.Selector); err == nil &&
		!selector.Matches(labels.Set(j.Spec.Template.Labels)) {
		errs = append(errs, field.Invalid(path.Child("template", "metadata", "labels"), j.Spec.Template.Labels,
			"`selector` does not match template `labels`"))
	}
	// Indexed pods are named <job>-<index> and that is their hostname.
	if isIndexed(&j.Spec) && j.Spec.Completions != nil && *j.Spec.Completions > 0 {
		hostname := fmt.Sprintf("%s-%d", j.Name, *j.Spec.Completions-1)
		if len(utilvalidation.IsDNS1123Label(hostname)) > 0 {
			errs = append(errs, field.Invalid(field.NewPath("metadata", "name"), j.Name,
				"will not able to create pod with invalid DNS label: "+hostname))
		}
	}
	return errs
}

// validateGeneratedJobSelector checks that a generated selector and the
// template labels it relies on are still the ones made from the uid.
func validateGeneratedJobSelector(j *batchv1.Job) field.ErrorList {
	if j.Spec.ManualSelector != nil && *j.Spec.ManualSelector || j.Spec.Selector == nil {
		return nil
	}
	var errs field.ErrorList
	if j.UID == "" {
		errs = append(errs, field.Required(field.NewPath("metadata", "uid"), ""))
	}
	expected := map[string]string{
		legacyControllerUIDLabel:   string(j.UID),
		legacyJobNameLabel:         j.Name,
		batchv1.ControllerUidLabel: string(j.UID),
		batchv1.JobNameLabel:       j.Name,
	}
	labelsPath := field.NewPath("spec", "template", "metadata", "labels")
	for _, key := range []string{legacyControllerUIDLabel, legacyJobNameLabel, batchv1.ControllerUidLabel, batchv1.JobNameLabel} {
		got, ok := j.Spec.Template.Labels[key]
		switch {
		case !ok:
			errs = append(errs, field.Required(labelsPath.Key(key), expected[key]))
		case got != expected[key]:
			errs = append(errs, field.Invalid(labelsPath.Key(key), j.Spec.Template.Labels,
				fmt.Sprintf("must be '%s'", expected[key])))
		}
	}
	if selector, err := metav1.LabelSelectorAsSelector(j.Spec.Selector); err == nil && !selector.Matches(labels.Set(expected)) {
		errs = append(errs, field.Invalid(field.NewPath("spec", "selector"), j.Spec.Selector, "`selector` not auto-generated"))
	}
	return errs
}

// validateJobSpec checks what Jobs and CronJob job templates share: counts,
// completion mode, replacement policy and the pod template.
func validateJobSpec(spec *batchv1.JobSpec, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, validateOptionalNonnegative(spec.Parallelism, path.Child("parallelism"))...)
	errs = append(errs, validateOptionalNonnegative(spec.Completions, path.Child("completions"))...)
	errs = append(errs, validateOptionalNonnegative(spec.ActiveDeadlineSeconds, path.Child("activeDeadlineSeconds"))...)
	errs = append(errs, validateOptionalNonnegative(spec.BackoffLimit, path.Child("backoffLimit"))...)
	errs = append(errs, validateOptionalNonnegative(spec.TTLSecondsAfterFinished, path.Child("ttlSecondsAfterFinished"))...)
	errs = append(errs, validateOptionalNonnegative(spec.BackoffLimitPerIndex, path.Child("backoffLimitPerIndex"))...)
	errs = append(errs, validateOptionalNonnegative(spec.MaxFailedIndexes, path.Child("maxFailedIndexes"))...)
	if spec.MaxFailedIndexes != nil && spec.BackoffLimitPerIndex == nil {
		errs = append(errs, field.Required(path.Child("backoffLimitPerIndex"), "when maxFailedIndexes is specified"))
	}
	if spec.ManagedBy != nil {
		errs = append(errs, utilvalidation.IsDomainPrefixedPath(path.Child("managedBy"), *spec.ManagedBy)...)
		if len(*spec.ManagedBy) > 63 {
			errs = append(errs, field.TooLong(path.Child("managedBy"), *spec.ManagedBy, 63))
		}
	}

	if mode := spec.CompletionMode; mode != nil && *mode != batchv1.NonIndexedCompletion && *mode != batchv1.IndexedCompletion {
		errs = append(errs, field.NotSupported(path.Child("completionMode"), *mode,
			[]batchv1.CompletionMode{batchv1.NonIndexedCompletion, batchv1.IndexedCompletion}))
	}
	if isIndexed(spec) {
		if spec.Completions == nil {
			errs = append(errs, field.Required(path.Child("completions"), "when completion mode is Indexed"))
		}
		if spec.Parallelism != nil && *spec.Parallelism > maxIndexedJobParallelism {
			errs = append(errs, field.Invalid(path.Child("parallelism"), *spec.Parallelism,
				fmt.Sprintf("must be less than or equal to %d when completion mode is Indexed", maxIndexedJobParallelism)))
		}
		if spec.Completions != nil && spec.MaxFailedIndexes != nil && *spec.MaxFailedIndexes > *spec.Completions {
			errs = append(errs, field.Invalid(path.Child("maxFailedIndexes"), *spec.MaxFailedIndexes, "must be less than or equal to completions"))
		}
	} else {
		if spec.BackoffLimitPerIndex != nil {
			errs = append(errs, field.Invalid(path.Child("backoffLimitPerIndex"), *spec.BackoffLimitPerIndex, "requires indexed completion mode"))
		}
		if spec.MaxFailedIndexes != nil {
			errs = append(errs, field.Invalid(path.Child("maxFailedIndexes"), *spec.MaxFailedIndexes, "requires indexed completion mode"))
		}
		if spec.SuccessPolicy != nil {
			errs = append(errs, field.Invalid(path.Child("successPolicy"), *spec.SuccessPolicy, "requires indexed completion mode"))
		}
	}

	if p := spec.PodReplacementPolicy; p != nil {
		allowed := []batchv1.PodReplacementPolicy{batchv1.Failed, batchv1.TerminatingOrFailed}
		if spec.PodFailurePolicy != nil {
			allowed = []batchv1.PodReplacementPolicy{batchv1.Failed}
		}
		if !slices.Contains(allowed, *p) {
			errs = append(errs, field.NotSupported(path.Child("podReplacementPolicy"), *p, allowed))
		}
	}

	errs = append(errs, validatePodTemplateSpec(&spec.Template, path.Child("template"))...)
	// Defaulting turns an unset policy into Always, so both mean the client
	// did not choose one of the two a job can use.
	restartPath := path.Child("template", "spec", "restartPolicy")
	switch rp := spec.Template.Spec.RestartPolicy; {
	case rp == corev1.RestartPolicyAlways || rp == "":
		errs = append(errs, field.Required(restartPath, fmt.Sprintf("valid values: %q, %q", corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever)))
	case rp != corev1.RestartPolicyOnFailure && rp != corev1.RestartPolicyNever:
		errs = append(errs, field.NotSupported(restartPath, rp, []corev1.RestartPolicy{corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever}))
	case spec.PodFailurePolicy != nil && rp != corev1.RestartPolicyNever:
		errs = append(errs, field.Invalid(restartPath, rp, fmt.Sprintf("only %q is supported when podFailurePolicy is specified", corev1.RestartPolicyNever)))
	}
	return errs
}

// validateJobUpdate rejects changes to what a running Job was started with.
func validateJobUpdate(j, old *batchv1.Job) field.ErrorList {
	path := field.NewPath("spec")
	spec, oldSpec := &j.Spec, &old.Spec
	errs := validateObjectMetaUpdate(&j.ObjectMeta, &old.ObjectMeta)
	errs = append(errs, apimachineryvalidation.ValidateImmutableField(spec.Selector, oldSpec.Selector, path.Child("selector"))...)
	errs = append(errs, validateJobCompletionsUpdate(spec, oldSpec, path.Child("completions"))...)
	errs = append(errs, validateJobTemplateUpdate(j, old, path.Child("template"))...)
	errs = append(errs, apimachineryvalidation.ValidateImmutableField(spec.CompletionMode, oldSpec.CompletionMode, path.Child("completionMode"))...)
	errs = append(errs, apimachineryvalidation.ValidateImmutableField(spec.PodFailurePolicy, oldSpec.PodFailurePolicy, path.Child("podFailurePolicy"))...)
	errs = append(errs, apimachineryvalidation.ValidateImmutableField(spec.BackoffLimitPerIndex, oldSpec.BackoffLimitPerIndex, path.Child("backoffLimitPerIndex"))...)
	errs = append(errs, apimachineryvalidation.ValidateImmutableField(spec.ManagedBy, oldSpec.ManagedBy, path.Child("managedBy"))...)
	errs = append(errs, apimachineryvalidation.ValidateImmutableField(spec.SuccessPolicy, oldSpec.SuccessPolicy, path.Child("successPolicy"))...)
	return errs
}

// validateJobCompletionsUpdate keeps completions fixed, except that an
// Indexed Job may be resized if completions and parallelism move together.
func validateJobCompletionsUpdate(spec, oldSpec *batchv1.JobSpec, path *field.Path) field.ErrorList {
	if apiequality.Semantic.DeepEqual(spec.Completions, oldSpec.Completions) {
		return nil
	}
	if !isIndexed(spec) {
		return apimachineryvalidation.ValidateImmutableField(spec.Completions, oldSpec.Completions, path)
	}
	// A nil completions on an Indexed Job is reported by validateJobSpec.
	if spec.Completions == nil || spec.Parallelism != nil && *spec.Completions == *spec.Parallelism {
		return nil
	}
	return field.ErrorList{field.Invalid(path, *spec.Completions, "can only be modified in tandem with spec.parallelism")}
}

// validateJobTemplateUpdate keeps the pod template fixed. A Job that is
// suspended and has never started may still have its pods placed
// elsewhere: its scheduling directives, labels and annotations can change,
// which is how queueing systems admit Jobs.
func validateJobTemplateUpdate(j, old *batchv1.Job, path *field.Path) field.ErrorList {
	tmpl, oldTmpl := &j.Spec.Template, &old.Spec.Template
	if old.Spec.Suspend != nil && *old.Spec.Suspend && old.Status.StartTime == nil {
		oldTmpl = oldTmpl.DeepCopy()
		oldTmpl.Labels = tmpl.Labels
		oldTmpl.Annotations = tmpl.Annotations
		oldTmpl.Spec.NodeSelector = tmpl.Spec.NodeSelector
		oldTmpl.Spec.Tolerations = tmpl.Spec.Tolerations
		oldTmpl.Spec.SchedulingGates = tmpl.Spec.SchedulingGates
		oldTmpl.Spec.Affinity = mergedNodeAffinity(oldTmpl.Spec.Affinity, tmpl.Spec.Affinity)
	}
	return apimachineryvalidation.ValidateImmutableField(tmpl, oldTmpl, path)
}

// mergedNodeAffinity is old with the node affinity of updated: node affinity
// may change, pod (anti-)affinity may not.
func mergedNodeAffinity(old, updated *corev1.Affinity) *corev1.Affinity {
	switch {
	case old == nil && updated == nil:
		return nil
	case old == nil:
		return &corev1.Affinity{NodeAffinity: updated.NodeAffinity}
	case updated == nil:
		// Clearing the affinity is a change of node affinity only if that
		// was all it held.
		merged := old.DeepCopy()
		merged.NodeAffinity = nil
		if *merged == (corev1.Affinity{}) {
			return nil
		}
		return merged
	}
	merged := old.DeepCopy()
	merged.NodeAffinity = updated.NodeAffinity
	return merged
}

// jobCells is what kubectl get job shows: status, completions, duration and
// age; wide adds containers, images and selector.
func jobCells(j *batchv1.Job) []any {
	var parallelism int32
	if j.Spec.Parallelism != nil {
		parallelism = *j.Spec.Parallelism
	}
	var completions string
	switch {
	case j.Spec.Completions != nil:
		completions = fmt.Sprintf("%d/%d", j.Status.Succeeded, *j.Spec.Completions)
	case parallelism > 1:
		completions = fmt.Sprintf("%d/1 of %d", j.Status.Succeeded, parallelism)
	default:
		completions = fmt.Sprintf("%d/1", j.Status.Succeeded)
	}
	var took string
	switch start, end := j.Status.StartTime, j.Status.CompletionTime; {
	case start == nil:
	case end == nil:
		took = duration.HumanDuration(time.Since(start.Time))
	default:
		took = duration.HumanDuration(end.Sub(start.Time))
	}
	names, images := cellContainers(&j.Spec.Template.Spec)
	return []any{jobStatus(j), completions, took, age(j.CreationTimestamp),
		names, images, metav1.FormatLabelSelector(j.Spec.Selector)}
}

// jobStatus is the Status cell. Terminal conditions win, then deletion, then
// the conditions of a job still running.
func jobStatus(j *batchv1.Job) string {
	switch {
	case hasJobCondition(j, batchv1.JobComplete):
		return "Complete"
	case hasJobCondition(j, batchv1.JobFailed):
		return "Failed"
	case j.DeletionTimestamp != nil:
		return "Terminating"
	case hasJobCondition(j, batchv1.JobSuspended):
		return "Suspended"
	case hasJobCondition(j, batchv1.JobFailureTarget):
		return "FailureTarget"
	case hasJobCondition(j, batchv1.JobSuccessCriteriaMet):
		return "SuccessCriteriaMet"
	}
	return "Running"
}

// hasJobCondition reports whether the job's first condition of type t is True.
func hasJobCondition(j *batchv1.Job, t batchv1.JobConditionType) bool {
	for _, c := range j.Status.Conditions {
		if c.Type == t {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// isIndexed reports whether the Job gives each pod a completion index.
func isIndexed(spec *batchv1.JobSpec) bool {
	return spec.CompletionMode != nil && *spec.CompletionMode == batchv1.IndexedCompletion
}

package registry

// Helpers shared by the apps and batch resources: the checks every workload
// (Deployment, ReplicaSet, StatefulSet, DaemonSet, Job) makes of its
// selector, pod template and rolling-update bounds, and the table columns
// kubectl shows for pod templates. Metadata checks and the Age column come
// from meta.go.

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// validateWorkloadSelector checks spec.selector of a workload: required,
// well-formed, not empty, and matching the pod template's labels. kind is
// the word Kubernetes uses in the "empty selector" message.
func validateWorkloadSelector(sel *metav1.LabelSelector, tmplLabels map[string]string, kind string, spec *field.Path) field.ErrorList {
	var errs field.ErrorList
	selPath := spec.Child("selector")
	if sel == nil {
		errs = append(errs, field.Required(selPath, ""))
	} else {
		errs = append(errs, metav1validation.ValidateLabelSelector(sel, metav1validation.LabelSelectorValidationOptions{}, selPath)...)
		if len(sel.MatchLabels)+len(sel.MatchExpressions) == 0 {
			errs = append(errs, field.Invalid(selPath, sel, "empty selector is invalid for "+kind))
		}
	}
	// A nil selector converts to one that matches nothing, so a missing
	// selector is also reported as not matching the template, as in
	// Kubernetes.
	selector, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return append(errs, field.Invalid(selPath, sel, "invalid label selector"))
	}
	if !selector.Matches(labels.Set(tmplLabels)) {
		errs = append(errs, field.Invalid(spec.Child("template", "metadata", "labels"), tmplLabels,
			"`selector` does not match template `labels`"))
	}
	return errs
}

// validateSelectorUpdate keeps spec.selector as it was created: changing it
// would orphan the pods the controller already made.
func validateSelectorUpdate(sel, old *metav1.LabelSelector) field.ErrorList {
	return apimachineryvalidation.ValidateImmutableField(sel, old, field.NewPath("spec", "selector"))
}

// validateAlwaysRestart checks that a long-running workload's pods restart
// Always and have no active deadline. kind names the workload in the message,
// as Kubernetes words it.
func validateAlwaysRestart(spec *corev1.PodSpec, kind string, specPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	if spec.RestartPolicy != corev1.RestartPolicyAlways {
		errs = append(errs, field.NotSupported(specPath.Child("restartPolicy"), spec.RestartPolicy,
			[]corev1.RestartPolicy{corev1.RestartPolicyAlways}))
	}
	if spec.ActiveDeadlineSeconds != nil {
		errs = append(errs, field.Forbidden(specPath.Child("activeDeadlineSeconds"),
			"activeDeadlineSeconds in "+kind+" is not Supported"))
	}
	return errs
}

// validateOptionalNonnegative checks an optional count or duration.
func validateOptionalNonnegative[T int32 | int64](v *T, path *field.Path) field.ErrorList {
	if v == nil {
		return nil
	}
	return apimachineryvalidation.ValidateNonnegativeField(int64(*v), path)
}

// validateIntOrPercent checks a rolling-update bound: a non-negative integer
// or a percentage such as "25%".
func validateIntOrPercent(v intstr.IntOrString, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch v.Type {
	case intstr.String:
		for _, msg := range utilvalidation.IsValidPercent(v.StrVal) {
			errs = append(errs, field.Invalid(path, v, msg))
		}
	case intstr.Int:
		errs = append(errs, apimachineryvalidation.ValidateNonnegativeField(int64(v.IntValue()), path)...)
	default:
		errs = append(errs, field.Invalid(path, v, "must be an integer or percentage (e.g '5%')"))
	}
	return errs
}

// intOrPercentValue is the number in a bound, the percentage without its
// sign for "25%". Malformed percentages count as 0; validateIntOrPercent
// reports them.
func intOrPercentValue(v *intstr.IntOrString) int {
	if v == nil {
		return 0
	}
	if v.Type == intstr.String {
		n, err := strconv.Atoi(strings.TrimSuffix(v.StrVal, "%"))
		if err != nil || !strings.HasSuffix(v.StrVal, "%") {
			return 0
		}
		return n
	}
	return v.IntValue()
}

// validateAtMost100Percent rejects percentages above 100%.
func validateAtMost100Percent(v intstr.IntOrString, path *field.Path) field.ErrorList {
	if v.Type != intstr.String || len(utilvalidation.IsValidPercent(v.StrVal)) > 0 {
		return nil
	}
	if intOrPercentValue(&v) > 100 {
		return field.ErrorList{field.Invalid(path, v, "must not be greater than 100%")}
	}
	return nil
}

// rawJSONEqual compares two embedded objects by their JSON meaning, so that
// a client re-sending the same data with other spacing is not an update.
func rawJSONEqual(a, b runtime.RawExtension) bool {
	var ca, cb bytes.Buffer
	if json.Compact(&ca, a.Raw) != nil || json.Compact(&cb, b.Raw) != nil {
		return bytes.Equal(a.Raw, b.Raw)
	}
	return bytes.Equal(ca.Bytes(), cb.Bytes())
}

// The wide columns of every pod-template-owning resource.
var (
	colContainers = wideColumn("Containers", "string", "Names of each container in the template.")
	colImages     = wideColumn("Images", "string", "Images referenced by each container in the template.")
	colSelector   = wideColumn("Selector", "string", "Label selector of the pods this controller manages.")
)

// cellContainers returns the Containers and Images cells of a pod template:
// the names and the images of its containers, comma-separated.
func cellContainers(spec *corev1.PodSpec) (names, images string) {
	n := make([]string, len(spec.Containers))
	i := make([]string, len(spec.Containers))
	for k, c := range spec.Containers {
		n[k], i[k] = c.Name, c.Image
	}
	return strings.Join(n, ","), strings.Join(i, ",")
}

// replicasOrDefault reads an optional replica count; unset means 1, the
// value defaulting would have given it.
func replicasOrDefault(replicas *int32) int32 {
	if replicas == nil {
		return 1
	}
	return *replicas
}

// scaleSelector is status.selector of a /scale reply: the label selector in
// its string form, empty when it cannot be converted.
func scaleSelector(sel *metav1.LabelSelector) string {
	selector, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return ""
	}
	return selector.String()
}

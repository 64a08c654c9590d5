package registry

import (
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func daemonsets() *Resource {
	return &Resource{
		GroupVersionResource: schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "daemonsets"},
		Kind:                 "DaemonSet",
		SingularName:         "daemonset",
		Namespaced:           true,
		ShortNames:           []string{"ds"},
		Categories:           []string{"all"},
		New:                  func() runtime.Object { return &appsv1.DaemonSet{} },
		NewList:              func() runtime.Object { return &appsv1.DaemonSetList{} },
		Status:               true,
		ValidateStatus:       validateDaemonSetStatus,
		Default:              func(obj runtime.Object) { defaultDaemonSet(obj.(*appsv1.DaemonSet)) },
		PrepareForCreate: func(obj runtime.Object) {
			ds := obj.(*appsv1.DaemonSet)
			ds.Status = appsv1.DaemonSetStatus{}
			setTemplateGeneration(ds, max(templateGeneration(ds), 1))
		},
		PrepareForUpdate: func(obj, old runtime.Object) {
			ds, cur := obj.(*appsv1.DaemonSet), old.(*appsv1.DaemonSet)
			gen := templateGeneration(cur)
			if !apiequality.Semantic.DeepEqual(ds.Spec.Template, cur.Spec.Template) {
				gen++
			}
			setTemplateGeneration(ds, gen)
		},
		Validate: func(obj runtime.Object) field.ErrorList { return validateDaemonSet(obj.(*appsv1.DaemonSet)) },
		ValidateUpdate: func(obj, old runtime.Object) field.ErrorList {
			newObj, oldObj := obj.(*appsv1.DaemonSet), old.(*appsv1.DaemonSet)
			return append(validateObjectMetaUpdate(&newObj.ObjectMeta, &oldObj.ObjectMeta),
				validateSelectorUpdate(newObj.Spec.Selector, oldObj.Spec.Selector)...)
		},
		Table: &Table{
			Columns: []metav1.TableColumnDefinition{
				{Name: "Desired", Type: "integer", Description: "Nodes that should run the daemon pod."},
				{Name: "Current", Type: "integer", Description: "Nodes running at least one daemon pod."},
				{Name: "Ready", Type: "integer", Description: "Nodes whose daemon pod is ready."},
				{Name: "Up-to-date", Type: "integer", Description: "Nodes running the current template."},
				{Name: "Available", Type: "integer", Description: "Nodes whose daemon pod is available."},
				{Name: "Node Selector", Type: "string", Description: "Node labels the pods are restricted to."},
				ageColumn(), colContainers, colImages, colSelector,
			},
			Cells: func(obj runtime.Object) []any { return daemonSetCells(obj.(*appsv1.DaemonSet)) },
		},
	}
}

// templateGeneration is the number of a DaemonSet's template, kept in the
// annotation apps/v1 carries extensions/v1beta1's spec.templateGeneration
// in: 1 on create, one more at each change of the template, whatever a
// client writes. 0 when unset or unreadable.
func templateGeneration(ds *appsv1.DaemonSet) int64 {
	g, err := strconv.ParseInt(ds.Annotations[appsv1.DeprecatedTemplateGeneration], 10, 64)
	if err != nil || g < 0 {
		return 0
	}
	return g
}

func setTemplateGeneration(ds *appsv1.DaemonSet, gen int64) {
	if ds.Annotations == nil {
		ds.Annotations = map[string]string{}
	}
	ds.Annotations[appsv1.DeprecatedTemplateGeneration] = strconv.FormatInt(gen, 10)
}

// defaultDaemonSet applies apps/v1 defaulting: rolling updates one node at a
// time without surge, ten revisions kept.
func defaultDaemonSet(ds *appsv1.DaemonSet) {
	s := &ds.Spec.UpdateStrategy
	if s.Type == "" {
		s.Type = appsv1.RollingUpdateDaemonSetStrategyType
	}
	if s.Type == appsv1.RollingUpdateDaemonSetStrategyType {
		if s.RollingUpdate == nil {
			s.RollingUpdate = &appsv1.RollingUpdateDaemonSet{}
		}
		if s.RollingUpdate.MaxUnavailable == nil {
			s.RollingUpdate.MaxUnavailable = new(intstr.FromInt32(1))
		}
		if s.RollingUpdate.MaxSurge == nil {
			s.RollingUpdate.MaxSurge = new(intstr.FromInt32(0))
		}
	}
	if ds.Spec.RevisionHistoryLimit == nil {
		ds.Spec.RevisionHistoryLimit = new(int32(10))
	}
	defaultPodSpec(&ds.Spec.Template.Spec)
}

// validateDaemonSet checks a DaemonSet on create and update.
func validateDaemonSet(ds *appsv1.DaemonSet) field.ErrorList {
	errs := validateObjectMeta(&ds.ObjectMeta, true, nameIsDNSSubdomain)
	spec, path := &ds.Spec, field.NewPath("spec")

	errs = append(errs, validateWorkloadSelector(spec.Selector, spec.Template.Labels, "daemonset", path)...)
	errs = append(errs, validatePodTemplateSpec(&spec.Template, path.Child("template"))...)
	errs = append(errs, validateAlwaysRestart(&spec.Template.Spec, "DaemonSet", path.Child("template", "spec"))...)
	errs = append(errs, apimachineryvalidation.ValidateNonnegativeField(int64(spec.MinReadySeconds), path.Child("minReadySeconds"))...)
	errs = append(errs, validateDaemonSetStrategy(&spec.UpdateStrategy, path.Child("updateStrategy"))...)
	errs = append(errs, validateOptionalNonnegative(spec.RevisionHistoryLimit, path.Child("revisionHistoryLimit"))...)
	return errs
}

// validateDaemonSetStrategy checks spec.updateStrategy. A rolling update
// either surges or takes pods down first, so exactly one of maxSurge and
// maxUnavailable must be non-zero.
func validateDaemonSetStrategy(s *appsv1.DaemonSetUpdateStrategy, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch s.Type {
	case appsv1.OnDeleteDaemonSetStrategyType:
	case appsv1.RollingUpdateDaemonSetStrategyType:
		if s.RollingUpdate == nil {
			return append(errs, field.Required(path.Child("rollingUpdate"), ""))
		}
		ruPath := path.Child("rollingUpdate")
		unavailable, surge := intstr.FromInt32(0), intstr.FromInt32(0)
		if s.RollingUpdate.MaxUnavailable != nil {
			unavailable = *s.RollingUpdate.MaxUnavailable
		}
		if s.RollingUpdate.MaxSurge != nil {
			surge = *s.RollingUpdate.MaxSurge
		}
		errs = append(errs, validateIntOrPercent(unavailable, ruPath.Child("maxUnavailable"))...)
		errs = append(errs, validateIntOrPercent(surge, ruPath.Child("maxSurge"))...)
		errs = append(errs, validateAtMost100Percent(unavailable, ruPath.Child("maxUnavailable"))...)
		errs = append(errs, validateAtMost100Percent(surge, ruPath.Child("maxSurge"))...)
		hasUnavailable, hasSurge := intOrPercentValue(&unavailable) != 0, intOrPercentValue(&surge) != 0
		switch {
		case hasUnavailable && hasSurge:
			errs = append(errs, field.Invalid(ruPath.Child("maxSurge"), surge, "may not be set when maxUnavailable is non-zero"))
		case !hasUnavailable && !hasSurge:
			errs = append(errs, field.Required(ruPath.Child("maxUnavailable"), "cannot be 0 when maxSurge is 0"))
		}
	default:
		errs = append(errs, field.NotSupported(path, s, []appsv1.DaemonSetUpdateStrategyType{
			appsv1.RollingUpdateDaemonSetStrategyType, appsv1.OnDeleteDaemonSetStrategyType}))
	}
	return errs
}

// daemonSetCells is what kubectl get daemonset shows: desired, current,
// ready, up-to-date and available counts, the node selector and age; wide
// adds containers, images and selector.
func daemonSetCells(ds *appsv1.DaemonSet) []any {
	st := ds.Status
	names, images := cellContainers(&ds.Spec.Template.Spec)
	return []any{
		int64(st.DesiredNumberScheduled),
		int64(st.CurrentNumberScheduled),
		int64(st.NumberReady),
		int64(st.UpdatedNumberScheduled),
		int64(st.NumberAvailable),
		labels.FormatLabels(ds.Spec.Template.Spec.NodeSelector),
		age(ds.CreationTimestamp),
		names, images, metav1.FormatLabelSelector(ds.Spec.Selector),
	}
}

package registry

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func deployments() *Resource {
	return &Resource{
		GroupVersionResource: schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"},
		Kind:                 "Deployment",
		SingularName:         "deployment",
		Namespaced:           true,
		ShortNames:           []string{"deploy"},
		Categories:           []string{"all"},
		New:                  func() runtime.Object { return &appsv1.Deployment{} },
		NewList:              func() runtime.Object { return &appsv1.DeploymentList{} },
		Status:               true,
		ValidateStatus:       validateDeploymentStatus,
		Scale: &ScaleAccess{
			Get: func(obj runtime.Object) (int32, int32, string) {
				d := obj.(*appsv1.Deployment)
				return replicasOrDefault(d.Spec.Replicas), d.Status.Replicas, scaleSelector(d.Spec.Selector)
			},
			SetReplicas: func(obj runtime.Object, replicas int32) {
				obj.(*appsv1.Deployment).Spec.Replicas = &replicas
			},
		},
		Default: func(obj runtime.Object) { defaultDeployment(obj.(*appsv1.Deployment)) },
		PrepareForCreate: func(obj runtime.Object) {
			obj.(*appsv1.Deployment).Status = appsv1.DeploymentStatus{}
		},
		Validate: func(obj runtime.Object) field.ErrorList { return validateDeployment(obj.(*appsv1.Deployment)) },
		ValidateUpdate: func(obj, old runtime.Object) field.ErrorList {
			newObj, oldObj := obj.(*appsv1.Deployment), old.(*appsv1.Deployment)
			return append(validateObjectMetaUpdate(&newObj.ObjectMeta, &oldObj.ObjectMeta),
				validateSelectorUpdate(newObj.Spec.Selector, oldObj.Spec.Selector)...)
		},
		Table: &Table{
			Columns: []metav1.TableColumnDefinition{
				{Name: "Ready", Type: "string", Description: "Ready pods out of the desired replicas."},
				{Name: "Up-to-date", Type: "string", Description: "Pods running the current template."},
				{Name: "Available", Type: "string", Description: "Pods available for at least minReadySeconds."},
				ageColumn(), colContainers, colImages, colSelector,
			},
			Cells: func(obj runtime.Object) []any { return deploymentCells(obj.(*appsv1.Deployment)) },
		},
	}
}

// defaultDeployment applies apps/v1 defaulting: one replica, a 25%/25%
// rolling update, ten old ReplicaSets kept, a ten-minute progress deadline.
func defaultDeployment(d *appsv1.Deployment) {
	spec := &d.Spec
	if spec.Replicas == nil {
		spec.Replicas = new(int32(1))
	}
	if spec.Strategy.Type == "" {
		spec.Strategy.Type = appsv1.RollingUpdateDeploymentStrategyType
	}
	if spec.Strategy.Type == appsv1.RollingUpdateDeploymentStrategyType {
		if spec.Strategy.RollingUpdate == nil {
			spec.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{}
		}
		ru := spec.Strategy.RollingUpdate
		if ru.MaxUnavailable == nil {
			ru.MaxUnavailable = new(intstr.FromString("25%"))
		}
		if ru.MaxSurge == nil {
			ru.MaxSurge = new(intstr.FromString("25%"))
		}
	}
	if spec.RevisionHistoryLimit == nil {
		spec.RevisionHistoryLimit = new(int32(10))
	}
	if spec.ProgressDeadlineSeconds == nil {
		spec.ProgressDeadlineSeconds = new(int32(600))
	}
	defaultPodSpec(&spec.Template.Spec)
}

// validateDeployment checks a Deployment on create and update.
func validateDeployment(d *appsv1.Deployment) field.ErrorList {
	errs := validateObjectMeta(&d.ObjectMeta, true, nameIsDNSSubdomain)
	spec, path := &d.Spec, field.NewPath("spec")

	errs = append(errs, validateOptionalNonnegative(spec.Replicas, path.Child("replicas"))...)
	errs = append(errs, validateWorkloadSelector(spec.Selector, spec.Template.Labels, "deployment", path)...)
	errs = append(errs, validatePodTemplateSpec(&spec.Template, path.Child("template"))...)
	// Deployments share the ReplicaSet template check, wording included.
	errs = append(errs, validateAlwaysRestart(&spec.Template.Spec, "ReplicaSet", path.Child("template", "spec"))...)
	errs = append(errs, validateDeploymentStrategy(&spec.Strategy, path.Child("strategy"))...)
	errs = append(errs, apimachineryvalidation.ValidateNonnegativeField(int64(spec.MinReadySeconds), path.Child("minReadySeconds"))...)
	errs = append(errs, validateOptionalNonnegative(spec.RevisionHistoryLimit, path.Child("revisionHistoryLimit"))...)
	if p := spec.ProgressDeadlineSeconds; p != nil {
		errs = append(errs, apimachineryvalidation.ValidateNonnegativeField(int64(*p), path.Child("progressDeadlineSeconds"))...)
		if *p <= spec.MinReadySeconds {
			errs = append(errs, field.Invalid(path.Child("progressDeadlineSeconds"), *p, "must be greater than minReadySeconds"))
		}
	}
	return errs
}

// validateDeploymentStrategy checks spec.strategy: Recreate takes no
// rollingUpdate, and a rolling update must be able to make progress.
func validateDeploymentStrategy(s *appsv1.DeploymentStrategy, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch s.Type {
	case appsv1.RecreateDeploymentStrategyType:
		if s.RollingUpdate != nil {
			errs = append(errs, field.Forbidden(path.Child("rollingUpdate"),
				fmt.Sprintf("may not be specified when strategy `type` is '%s'", appsv1.RecreateDeploymentStrategyType)))
		}
	case appsv1.RollingUpdateDeploymentStrategyType:
		ru := s.RollingUpdate
		if ru == nil {
			return append(errs, field.Required(path.Child("rollingUpdate"), "this should be defaulted and never be nil"))
		}
		ruPath := path.Child("rollingUpdate")
		unavailable, surge := intstr.FromInt32(0), intstr.FromInt32(0)
		if ru.MaxUnavailable != nil {
			unavailable = *ru.MaxUnavailable
		}
		if ru.MaxSurge != nil {
			surge = *ru.MaxSurge
		}
		errs = append(errs, validateIntOrPercent(unavailable, ruPath.Child("maxUnavailable"))...)
		errs = append(errs, validateIntOrPercent(surge, ruPath.Child("maxSurge"))...)
		if intOrPercentValue(&unavailable) == 0 && intOrPercentValue(&surge) == 0 {
			errs = append(errs, field.Invalid(ruPath.Child("maxUnavailable"), unavailable, "may not be 0 when `maxSurge` is 0"))
		}
		errs = append(errs, validateAtMost100Percent(unavailable, ruPath.Child("maxUnavailable"))...)
	default:
		errs = append(errs, field.NotSupported(path, s, []appsv1.DeploymentStrategyType{
			appsv1.RecreateDeploymentStrategyType, appsv1.RollingUpdateDeploymentStrategyType}))
	}
	return errs
}

// deploymentCells is what kubectl get deployment shows: ready out of desired,
// up to date, available, age; wide adds containers, images and selector.
func deploymentCells(d *appsv1.Deployment) []any {
	selector := "<invalid>"
	if s, err := metav1.LabelSelectorAsSelector(d.Spec.Selector); err == nil {
		selector = s.String()
	}
	names, images := cellContainers(&d.Spec.Template.Spec)
	return []any{
		fmt.Sprintf("%d/%d", d.Status.ReadyReplicas, replicasOrDefault(d.Spec.Replicas)),
		int64(d.Status.UpdatedReplicas),
		int64(d.Status.AvailableReplicas),
		age(d.CreationTimestamp),
		names, images, selector,
	}
}

package registry

import (
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func replicasets() *Resource {
	return &Resource{
		GroupVersionResource: schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "replicasets"},
		Kind:                 "ReplicaSet",
		SingularName:         "replicaset",
		Namespaced:           true,
		ShortNames:           []string{"rs"},
		Categories:           []string{"all"},
		New:                  func() runtime.Object { return &appsv1.ReplicaSet{} },
		NewList:              func() runtime.Object { return &appsv1.ReplicaSetList{} },
		Status:               true,
		ValidateStatus:       validateReplicaSetStatus,
		Scale: &ScaleAccess{
			Get: func(obj runtime.Object) (int32, int32, string) {
				rs := obj.(*appsv1.ReplicaSet)
				return replicasOrDefault(rs.Spec.Replicas), rs.Status.Replicas, scaleSelector(rs.Spec.Selector)
			},
			SetReplicas: func(obj runtime.Object, replicas int32) {
				obj.(*appsv1.ReplicaSet).Spec.Replicas = &replicas
			},
		},
		Default: func(obj runtime.Object) { defaultReplicaSet(obj.(*appsv1.ReplicaSet)) },
		PrepareForCreate: func(obj runtime.Object) {
			obj.(*appsv1.ReplicaSet).Status = appsv1.ReplicaSetStatus{}
		},
		Validate: func(obj runtime.Object) field.ErrorList { return validateReplicaSet(obj.(*appsv1.ReplicaSet)) },
		ValidateUpdate: func(obj, old runtime.Object) field.ErrorList {
			newObj, oldObj := obj.(*appsv1.ReplicaSet), old.(*appsv1.ReplicaSet)
			return append(validateObjectMetaUpdate(&newObj.ObjectMeta, &oldObj.ObjectMeta),
				validateSelectorUpdate(newObj.Spec.Selector, oldObj.Spec.Selector)...)
		},
		// Kubernetes lets ReplicaSets be selected by their observed size.
		Fields: func(obj runtime.Object) fields.Set {
			return fields.Set{"status.replicas": strconv.Itoa(int(obj.(*appsv1.ReplicaSet).Status.Replicas))}
		},
		Table: &Table{
			Columns: []metav1.TableColumnDefinition{
				{Name: "Desired", Type: "integer", Description: "Number of desired pods."},
				{Name: "Current", Type: "integer", Description: "Number of pods created."},
				{Name: "Ready", Type: "integer", Description: "Number of ready pods."},
				ageColumn(), colContainers, colImages, colSelector,
			},
			Cells: func(obj runtime.Object) []any { return replicaSetCells(obj.(*appsv1.ReplicaSet)) },
		},
	}
}

// defaultReplicaSet applies apps/v1 defaulting: one replica.
func defaultReplicaSet(rs *appsv1.ReplicaSet) {
	if rs.Spec.Replicas == nil {
		rs.Spec.Replicas = new(int32(1))
	}
	defaultPodSpec(&rs.Spec.Template.Spec)
}

// validateReplicaSet checks a ReplicaSet on create and update.
func validateReplicaSet(rs *appsv1.ReplicaSet) field.ErrorList {
	errs := validateObjectMeta(&rs.ObjectMeta, true, nameIsDNSSubdomain)
	spec, path := &rs.Spec, field.NewPath("spec")

	errs = append(errs, validateOptionalNonnegative(spec.Replicas, path.Child("replicas"))...)
	errs = append(errs, apimachineryvalidation.ValidateNonnegativeField(int64(spec.MinReadySeconds), path.Child("minReadySeconds"))...)
	// Kubernetes shares the Deployment wording: "invalid for deployment".
	errs = append(errs, validateWorkloadSelector(spec.Selector, spec.Template.Labels, "deployment", path)...)
	errs = append(errs, validatePodTemplateSpec(&spec.Template, path.Child("template"))...)
	errs = append(errs, validateAlwaysRestart(&spec.Template.Spec, "ReplicaSet", path.Child("template", "spec"))...)
	return errs
}

// replicaSetCells is what kubectl get replicaset shows: desired, current and
// ready pods, age; wide adds containers, images and selector.
func replicaSetCells(rs *appsv1.ReplicaSet) []any {
	names, images := cellContainers(&rs.Spec.Template.Spec)
	return []any{
		int64(replicasOrDefault(rs.Spec.Replicas)),
		int64(rs.Status.Replicas),
		int64(rs.Status.ReadyReplicas),
		age(rs.CreationTimestamp),
		names, images, metav1.FormatLabelSelector(rs.Spec.Selector),
	}
}

package registry

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func namespaces() *Resource {
	return &Resource{
		GroupVersionResource: schema.GroupVersionResource{Group: "", Version: "v1", Resource: "namespaces"},
		Kind:                 "Namespace",
		SingularName:         "namespace",
		Namespaced:           false,
		ShortNames:           []string{"ns"},
		Categories:           nil,
		New:                  func() runtime.Object { return &corev1.Namespace{} },
		NewList:              func() runtime.Object { return &corev1.NamespaceList{} },
		Status:               true,
		Default:              func(obj runtime.Object) { defaultNamespace(obj.(*corev1.Namespace)) },
		PrepareForCreate:     func(obj runtime.Object) { prepareNamespaceForCreate(obj.(*corev1.Namespace)) },
		Validate:             func(obj runtime.Object) field.ErrorList { return validateNamespace(obj.(*corev1.Namespace)) },
		ValidateUpdate: func(obj, old runtime.Object) field.ErrorList {
			return validateObjectMetaUpdate(&obj.(*corev1.Namespace).ObjectMeta, &old.(*corev1.Namespace).ObjectMeta)
		},
		Fields: func(obj runtime.Object) fields.Set {
			ns := obj.(*corev1.Namespace)
			return fields.Set{
				"status.phase": string(ns.Status.Phase),
				// Kubernetes keeps this unprefixed key for old clients.
				"name": ns.Name,
			}
		},
		Table: &Table{
			Columns: []metav1.TableColumnDefinition{
				column("Status", "string", "The status of the namespace"),
				ageColumn(),
			},
			Cells: func(obj runtime.Object) []any {
				ns := obj.(*corev1.Namespace)
				return []any{string(ns.Status.Phase), age(ns.CreationTimestamp)}
			},
		},
	}
}

// defaultNamespace labels a namespace with its own name, so that namespace
// selectors can pick it by name, and marks it Active.
func defaultNamespace(ns *corev1.Namespace) {
	if ns.Name != "" {
		if ns.Labels == nil {
			ns.Labels = map[string]string{}
		}
		ns.Labels[corev1.LabelMetadataName] = ns.Name
	}
	if ns.Status.Phase == "" {
		ns.Status.Phase = corev1.NamespaceActive
	}
}

// prepareNamespaceForCreate makes a new namespace Active and gives it the
// kubernetes finalizer, which the namespace controller removes once it has
// emptied a terminating namespace. It is set here rather than defaulted so
// that an update never puts it back.
func prepareNamespaceForCreate(ns *corev1.Namespace) {
	ns.Status = corev1.NamespaceStatus{Phase: corev1.NamespaceActive}
	for _, f := range ns.Spec.Finalizers {
		if f == corev1.FinalizerKubernetes {
			return
		}
	}
	ns.Spec.Finalizers = append(ns.Spec.Finalizers, corev1.FinalizerKubernetes)
}

func validateNamespace(ns *corev1.Namespace) field.ErrorList {
	errs := validateObjectMeta(&ns.ObjectMeta, false, nameIsDNSLabel)
	finalizers := make([]string, len(ns.Spec.Finalizers))
	for i, f := range ns.Spec.Finalizers {
		finalizers[i] = string(f)
		errs = append(errs, validateQualifiedName(string(f), field.NewPath("spec", "finalizers").Index(i))...)
	}
	return append(errs, validateFinalizerNames(finalizers, field.NewPath("spec", "finalizers"))...)
}

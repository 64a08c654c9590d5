package registry

import (
	"strings"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/api/validate/content"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func leases() *Resource {
	return &Resource{
		GroupVersionResource: schema.GroupVersionResource{Group: "coordination.k8s.io", Version: "v1", Resource: "leases"},
		Kind:                 "Lease",
		SingularName:         "lease",
		Namespaced:           true,
		ShortNames:           nil,
		Categories:           nil,
		New:                  func() runtime.Object { return &coordinationv1.Lease{} },
		NewList:              func() runtime.Object { return &coordinationv1.LeaseList{} },
		Status:               false,
		Validate:             func(obj runtime.Object) field.ErrorList { return validateLease(obj.(*coordinationv1.Lease)) },
		ValidateUpdate: func(obj, old runtime.Object) field.ErrorList {
			return validateObjectMetaUpdate(&obj.(*coordinationv1.Lease).ObjectMeta, &old.(*coordinationv1.Lease).ObjectMeta)
		},
		Table: &Table{
			Columns: []metav1.TableColumnDefinition{
				column("Holder", "string", "Identity of the current holder of the lease."),
				ageColumn(),
			},
			Cells: func(obj runtime.Object) []any {
				l := obj.(*coordinationv1.Lease)
				var holder string
				if l.Spec.HolderIdentity != nil {
					holder = *l.Spec.HolderIdentity
				}
				return []any{holder, age(l.CreationTimestamp)}
			},
		},
	}
}

// validateLease checks a Lease on create and update. Node agents and leader
// elections renew leases every few seconds, so this stays cheap.
func validateLease(l *coordinationv1.Lease) field.ErrorList {
	errs := validateObjectMeta(&l.ObjectMeta, true, nameIsDNSSubdomain)
	spec, path := &l.Spec, field.NewPath("spec")
	if d := spec.LeaseDurationSeconds; d != nil && *d <= 0 {
		errs = append(errs, field.Invalid(path.Child("leaseDurationSeconds"), *d, "must be greater than 0"))
	}
	if t := spec.LeaseTransitions; t != nil && *t < 0 {
		errs = append(errs, field.Invalid(path.Child("leaseTransitions"), *t, "must be greater than or equal to 0"))
	}
	if s := spec.Strategy; s != nil {
		errs = append(errs, validateLeaseStrategy(*s, path.Child("strategy"))...)
	}
	if h := spec.PreferredHolder; h != nil && *h != "" && (spec.Strategy == nil || *spec.Strategy == "") {
		errs = append(errs, field.Forbidden(path.Child("preferredHolder"), "may only be specified if `strategy` is defined"))
	}
	return errs
}

// validateLeaseStrategy accepts Kubernetes' own strategies by their bare
// names, and third-party ones as prefixed names such as example.com/mine.
func validateLeaseStrategy(s coordinationv1.CoordinatedLeaseStrategy, path *field.Path) field.ErrorList {
	if !strings.Contains(string(s), "/") {
		if s != coordinationv1.OldestEmulationVersion {
			return field.ErrorList{field.NotSupported(path, s, []coordinationv1.CoordinatedLeaseStrategy{coordinationv1.OldestEmulationVersion})}
		}
		return nil
	}
	var errs field.ErrorList
	for _, msg := range content.IsQualifiedName(string(s)) {
		errs = append(errs, field.Invalid(path, s, msg))
	}
	return errs
}

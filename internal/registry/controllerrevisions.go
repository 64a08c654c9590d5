package registry

import (
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func controllerrevisions() *Resource {
	return &Resource{
		GroupVersionResource: schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "controllerrevisions"},
		Kind:                 "ControllerRevision",
		SingularName:         "controllerrevision",
		Namespaced:           true,
		ShortNames:           nil,
		Categories:           nil,
		New:                  func() runtime.Object { return &appsv1.ControllerRevision{} },
		NewList:              func() runtime.Object { return &appsv1.ControllerRevisionList{} },
		Status:               false,
		Validate: func(obj runtime.Object) field.ErrorList {
			return validateControllerRevision(obj.(*appsv1.ControllerRevision))
		},
		// The data is the snapshot a rollback returns to; it never changes.
		ValidateUpdate: func(obj, old runtime.Object) field.ErrorList {
			rev, oldRev := obj.(*appsv1.ControllerRevision), old.(*appsv1.ControllerRevision)
			errs := validateObjectMetaUpdate(&rev.ObjectMeta, &oldRev.ObjectMeta)
			if !rawJSONEqual(rev.Data, oldRev.Data) {
				errs = append(errs, field.Invalid(field.NewPath("data"), rev.Data, apimachineryvalidation.FieldImmutableErrorMsg))
			}
			return errs
		},
		Table: &Table{
			Columns: []metav1.TableColumnDefinition{
				{Name: "Controller", Type: "string", Description: "Controller of the object."},
				{Name: "Revision", Type: "string", Description: "Revision number of the snapshot."},
				ageColumn(),
			},
			Cells: func(obj runtime.Object) []any {
				rev := obj.(*appsv1.ControllerRevision)
				return []any{revisionController(rev), rev.Revision, age(rev.CreationTimestamp)}
			},
		},
	}
}

// validateControllerRevision checks a ControllerRevision on create and update.
func validateControllerRevision(rev *appsv1.ControllerRevision) field.ErrorList {
	errs := validateObjectMeta(&rev.ObjectMeta, true, nameIsDNSSubdomain)
	if rev.Data.Raw == nil && rev.Data.Object == nil {
		errs = append(errs, field.Required(field.NewPath("data"), "data is mandatory"))
	}
	errs = append(errs, apimachineryvalidation.ValidateNonnegativeField(rev.Revision, field.NewPath("revision"))...)
	return errs
}

// revisionController is the Controller cell: the owning controller as
// kind.group/name, e.g. daemonset.apps/fluentd, or <none>.
func revisionController(rev *appsv1.ControllerRevision) string {
	ref := metav1.GetControllerOf(rev)
	if ref == nil {
		return "<none>"
	}
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		gv = schema.GroupVersion{}
	}
	kind := gv.WithKind(ref.Kind).GroupKind()
	if kind.Empty() {
		return ref.Name
	}
	return strings.ToLower(kind.String()) + "/" + ref.Name
}

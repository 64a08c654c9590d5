package registry

import (
	"maps"
	"strings"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/validate/content"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Limits on a StorageClass's provisioner parameters.
const (
	maxProvisionerParameters    = 512
	maxProvisionerParameterSize = 256 * 1024
)

func storageclasses() *Resource {
	return &Resource{
		GroupVersionResource: schema.GroupVersionResource{Group: "storage.k8s.io", Version: "v1", Resource: "storageclasses"},
		Kind:                 "StorageClass",
		SingularName:         "storageclass",
		Namespaced:           false,
		ShortNames:           []string{"sc"},
		Categories:           nil,
		New:                  func() runtime.Object { return &storagev1.StorageClass{} },
		NewList:              func() runtime.Object { return &storagev1.StorageClassList{} },
		Status:               false,
		Default: func(obj runtime.Object) {
			sc := obj.(*storagev1.StorageClass)
			if sc.ReclaimPolicy == nil {
				sc.ReclaimPolicy = new(corev1.PersistentVolumeReclaimDelete)
			}
			if sc.VolumeBindingMode == nil {
				sc.VolumeBindingMode = new(storagev1.VolumeBindingImmediate)
			}
		},
		Validate: func(obj runtime.Object) field.ErrorList { return validateStorageClass(obj.(*storagev1.StorageClass)) },
		ValidateUpdate: func(obj, old runtime.Object) field.ErrorList {
			return validateStorageClassUpdate(obj.(*storagev1.StorageClass), old.(*storagev1.StorageClass))
		},
		// The NAME column is the class's own: the default one is marked
		// "(default)", as kube-apiserver's printer marks it.
		Table: &Table{
			Columns: []metav1.TableColumnDefinition{
				{Name: "Name", Type: "string", Format: "name", Description: metav1.ObjectMeta{}.SwaggerDoc()["name"]},
				column("Provisioner", "string", "Provisioner of the volumes of this class."),
				column("ReclaimPolicy", "string", "What happens to a volume when its claim is released."),
				column("VolumeBindingMode", "string", "When volumes are provisioned and bound."),
				column("AllowVolumeExpansion", "string", "Whether volumes of this class can be expanded."),
				ageColumn(),
			},
			Cells: func(obj runtime.Object) []any { return storageClassCells(obj.(*storagev1.StorageClass)) },
		},
	}
}

// validateStorageClass checks a StorageClass on create and update.
func validateStorageClass(sc *storagev1.StorageClass) field.ErrorList {
	errs := validateObjectMeta(&sc.ObjectMeta, false, nameIsDNSSubdomain)

	provPath := field.NewPath("provisioner")
	if sc.Provisioner == "" {
		errs = append(errs, field.Required(provPath, ""))
	} else {
		// Provisioner names are case-insensitive, e.g. kubernetes.io/AWS-EBS.
		for _, msg := range content.IsQualifiedName(strings.ToLower(sc.Provisioner)) {
			errs = append(errs, field.Invalid(provPath, sc.Provisioner, msg))
		}
	}

	paramsPath := field.NewPath("parameters")
	if len(sc.Parameters) > maxProvisionerParameters {
		errs = append(errs, field.TooLong(paramsPath, "Provisioner Parameters exceeded max allowed", maxProvisionerParameters))
	} else {
		size := 0
		for k, v := range sc.Parameters {
			if k == "" {
				errs = append(errs, field.Invalid(paramsPath, k, "field can not be empty."))
			}
			size += len(k) + len(v)
		}
		if size > maxProvisionerParameterSize {
			errs = append(errs, field.TooLong(paramsPath, "", maxProvisionerParameterSize))
		}
	}

	if p := sc.ReclaimPolicy; p != nil && *p != "" && *p != corev1.PersistentVolumeReclaimDelete && *p != corev1.PersistentVolumeReclaimRetain {
		errs = append(errs, field.NotSupported(field.NewPath("reclaimPolicy"), *p,
			[]corev1.PersistentVolumeReclaimPolicy{corev1.PersistentVolumeReclaimDelete, corev1.PersistentVolumeReclaimRetain}))
	}
	modePath := field.NewPath("volumeBindingMode")
	switch m := sc.VolumeBindingMode; {
	case m == nil:
		errs = append(errs, field.Required(modePath, ""))
	case *m != storagev1.VolumeBindingImmediate && *m != storagev1.VolumeBindingWaitForFirstConsumer:
		errs = append(errs, field.NotSupported(modePath, *m,
			[]storagev1.VolumeBindingMode{storagev1.VolumeBindingImmediate, storagev1.VolumeBindingWaitForFirstConsumer}))
	}
	errs = append(errs, validateAllowedTopologies(sc.AllowedTopologies, field.NewPath("allowedTopologies"))...)
	return errs
}

// validateAllowedTopologies checks each term's label requirements: a valid
// key, at least one valid value, each key once per term.
func validateAllowedTopologies(terms []corev1.TopologySelectorTerm, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, term := range terms {
		exprPath := path.Index(i).Child("matchLabelExpressions")
		seen := map[string]bool{}
		for j, req := range term.MatchLabelExpressions {
			reqPath := exprPath.Index(j)
			errs = append(errs, metav1validation.ValidateLabelName(req.Key, reqPath.Child("key"))...)
			if seen[req.Key] {
				errs = append(errs, field.Duplicate(reqPath.Child("key"), req.Key))
			}
			seen[req.Key] = true
			if len(req.Values) == 0 {
				errs = append(errs, field.Required(reqPath.Child("values"), "must specify as least one value"))
			}
			for k, v := range req.Values {
				for _, msg := range content.IsLabelValue(v) {
					errs = append(errs, field.Invalid(reqPath.Child("values").Index(k), v, msg))
				}
			}
		}
	}
	return errs
}

// validateStorageClassUpdate keeps what existing volumes were provisioned
// under: only metadata, mount options, expansion and topology may change.
func validateStorageClassUpdate(sc, old *storagev1.StorageClass) field.ErrorList {
	errs := validateObjectMetaUpdate(&sc.ObjectMeta, &old.ObjectMeta)
	if !maps.Equal(sc.Parameters, old.Parameters) {
		errs = append(errs, field.Forbidden(field.NewPath("parameters"), "updates to parameters are forbidden."))
	}
	if sc.Provisioner != old.Provisioner {
		errs = append(errs, field.Forbidden(field.NewPath("provisioner"), "updates to provisioner are forbidden."))
	}
	if reclaimPolicyOf(sc) != reclaimPolicyOf(old) {
		errs = append(errs, field.Forbidden(field.NewPath("reclaimPolicy"), "updates to reclaimPolicy are forbidden."))
	}
	errs = append(errs, apimachineryvalidation.ValidateImmutableField(sc.VolumeBindingMode, old.VolumeBindingMode, field.NewPath("volumeBindingMode"))...)
	return errs
}

// reclaimPolicyOf reads the reclaim policy, Delete when unset.
func reclaimPolicyOf(sc *storagev1.StorageClass) corev1.PersistentVolumeReclaimPolicy {
	if sc.ReclaimPolicy == nil {
		return corev1.PersistentVolumeReclaimDelete
	}
	return *sc.ReclaimPolicy
}

// storageClassCells is what kubectl get storageclass shows.
func storageClassCells(sc *storagev1.StorageClass) []any {
	mode := storagev1.VolumeBindingImmediate
	if sc.VolumeBindingMode != nil {
		mode = *sc.VolumeBindingMode
	}
	expand := sc.AllowVolumeExpansion != nil && *sc.AllowVolumeExpansion
	name := sc.Name
	if sc.Annotations["storageclass.kubernetes.io/is-default-class"] == "true" || sc.Annotations["storageclass.beta.kubernetes.io/is-default-class"] == "true" {
		name += " (default)"
	}
	return []any{name, sc.Provisioner, string(reclaimPolicyOf(sc)), string(mode), expand, age(sc.CreationTimestamp)}
}

package registry

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func persistentvolumeclaims() *Resource {
	return &Resource{
		GroupVersionResource: schema.GroupVersionResource{Group: "", Version: "v1", Resource: "persistentvolumeclaims"},
		Kind:                 "PersistentVolumeClaim",
		SingularName:         "persistentvolumeclaim",
		Namespaced:           true,
		ShortNames:           []string{"pvc"},
		Categories:           nil,
		New:                  func() runtime.Object { return &corev1.PersistentVolumeClaim{} },
		NewList:              func() runtime.Object { return &corev1.PersistentVolumeClaimList{} },
		Status:               true,
		Default: func(obj runtime.Object) {
			pvc := obj.(*corev1.PersistentVolumeClaim)
			if pvc.Status.Phase == "" {
				pvc.Status.Phase = corev1.ClaimPending
			}
			defaultPersistentVolumeClaimSpec(&pvc.Spec)
		},
		PrepareForCreate: func(obj runtime.Object) {
			obj.(*corev1.PersistentVolumeClaim).Status = corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimPending}
		},
		Validate: func(obj runtime.Object) field.ErrorList {
			pvc := obj.(*corev1.PersistentVolumeClaim)
			errs := validateObjectMeta(&pvc.ObjectMeta, true, nameIsDNSSubdomain)
			return append(errs, validatePersistentVolumeClaimSpec(&pvc.Spec, field.NewPath("spec"))...)
		},
		ValidateUpdate: func(obj, old runtime.Object) field.ErrorList {
			return validatePersistentVolumeClaimUpdate(obj.(*corev1.PersistentVolumeClaim), old.(*corev1.PersistentVolumeClaim))
		},
		Fields: func(obj runtime.Object) fields.Set {
			// Kubernetes keeps this unprefixed key for old clients.
			return fields.Set{"name": obj.(*corev1.PersistentVolumeClaim).Name}
		},
		Table: &Table{
			Columns: []metav1.TableColumnDefinition{
				column("Status", "string", corev1.PersistentVolumeClaimStatus{}.SwaggerDoc()["phase"]),
				column("Volume", "string", corev1.PersistentVolumeClaimSpec{}.SwaggerDoc()["volumeName"]),
				column("Capacity", "string", corev1.PersistentVolumeClaimStatus{}.SwaggerDoc()["capacity"]),
				column("Access Modes", "string", corev1.PersistentVolumeClaimStatus{}.SwaggerDoc()["accessModes"]),
				column("StorageClass", "string", "StorageClass of the pvc"),
				column("VolumeAttributesClass", "string", "VolumeAttributesClass of the pvc"),
				ageColumn(),
				wideColumn("VolumeMode", "string", corev1.PersistentVolumeClaimSpec{}.SwaggerDoc()["volumeMode"]),
			},
			Cells: func(obj runtime.Object) []any { return persistentVolumeClaimCells(obj.(*corev1.PersistentVolumeClaim)) },
		},
	}
}

// defaultPersistentVolumeClaimSpec is shared with the claim templates of
// ephemeral volumes.
func defaultPersistentVolumeClaimSpec(spec *corev1.PersistentVolumeClaimSpec) {
	if spec.VolumeMode == nil {
		spec.VolumeMode = new(corev1.PersistentVolumeFilesystem)
	}
	roundResourceList(spec.Resources.Limits)
	roundResourceList(spec.Resources.Requests)
}

// validatePersistentVolumeClaimSpec checks access modes, a positive storage
// request, the class and mode, the selector and data sources.
func validatePersistentVolumeClaimSpec(spec *corev1.PersistentVolumeClaimSpec, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if len(spec.AccessModes) == 0 {
		errs = append(errs, field.Required(path.Child("accessModes"), "at least 1 access mode is required"))
	}
	errs = append(errs, validateAccessModes(spec.AccessModes, path.Child("accessModes"))...)
	if spec.Selector != nil {
		errs = append(errs, metav1validation.ValidateLabelSelector(spec.Selector, metav1validation.LabelSelectorValidationOptions{}, path.Child("selector"))...)
	}
	storagePath := path.Child("resources").Key(string(corev1.ResourceStorage))
	if q, ok := spec.Resources.Requests[corev1.ResourceStorage]; !ok {
		errs = append(errs, field.Required(storagePath, ""))
	} else if q.Sign() <= 0 {
		errs = append(errs, field.Invalid(storagePath, q.String(), "must be greater than zero"))
	}
	if c := spec.StorageClassName; c != nil && *c != "" {
		errs = append(errs, validateName(*c, nameIsDNSSubdomain, path.Child("storageClassName"))...)
	}
	if spec.VolumeMode != nil {
		errs = append(errs, validateOneOf(path.Child("volumeMode"), *spec.VolumeMode, volumeModes...)...)
	}
	if ds := spec.DataSource; ds != nil {
		errs = append(errs, validateDataSource(ds.APIGroup, ds.Kind, ds.Name, path.Child("dataSource"))...)
	}
	if ds := spec.DataSourceRef; ds != nil {
		errs = append(errs, validateDataSource(ds.APIGroup, ds.Kind, ds.Name, path.Child("dataSourceRef"))...)
		if ds.Namespace != nil && *ds.Namespace != "" {
			errs = append(errs, validateName(*ds.Namespace, nameIsDNSLabel, path.Child("dataSourceRef", "namespace"))...)
			if spec.DataSource != nil {
				errs = append(errs, field.Invalid(path, path.Child("dataSource"), "may not be specified when dataSourceRef.namespace is specified"))
			}
		} else if d := spec.DataSource; d != nil && !(equalPtr(d.APIGroup, ds.APIGroup) && d.Kind == ds.Kind && d.Name == ds.Name) {
			errs = append(errs, field.Invalid(path, path.Child("dataSource"), "must match dataSourceRef"))
		}
	}
	if c := spec.VolumeAttributesClassName; c != nil && *c != "" {
		errs = append(errs, validateName(*c, nameIsDNSSubdomain, path.Child("volumeAttributesClassName"))...)
	}
	return errs
}

func validateDataSource(apiGroup *string, kind, name string, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if name == "" {
		errs = append(errs, field.Required(path.Child("name"), ""))
	}
	if kind == "" {
		errs = append(errs, field.Required(path.Child("kind"), ""))
	}
	group := ""
	if apiGroup != nil {
		group = *apiGroup
	}
	if group == "" && kind != "PersistentVolumeClaim" {
		errs = append(errs, field.Invalid(path, kind, "must be 'PersistentVolumeClaim' when referencing the default apiGroup"))
	}
	if group != "" {
		errs = append(errs, validateName(group, nameIsDNSSubdomain, path.Child("apiGroup"))...)
	}
	return errs
}

// validatePersistentVolumeClaimUpdate keeps a claim's spec as it was, except
// that the volume name may be set once, the class may be set when it was
// nil, and a bound claim may change its storage request (growing, or
// shrinking back towards its capacity after a failed expansion) and its
// volume attributes class.
func validatePersistentVolumeClaimUpdate(pvc, old *corev1.PersistentVolumeClaim) field.ErrorList {
	errs := validateObjectMetaUpdate(&pvc.ObjectMeta, &old.ObjectMeta)
	spec, oldSpec := pvc.Spec.DeepCopy(), old.Spec.DeepCopy()
	if oldSpec.VolumeName == "" {
		oldSpec.VolumeName = spec.VolumeName
	}
	if oldSpec.StorageClassName == nil && spec.StorageClassName != nil {
		if a, ok := old.Annotations[corev1.BetaStorageClassAnnotation]; !ok || a == *spec.StorageClassName {
			oldSpec.StorageClassName = spec.StorageClassName
		}
	}
	if pvc.Status.Phase == corev1.ClaimBound {
		if spec.Resources.Requests != nil {
			spec.Resources.Requests[corev1.ResourceStorage] = old.Spec.Resources.Requests[corev1.ResourceStorage]
		}
		if spec.VolumeAttributesClassName != nil {
			spec.VolumeAttributesClassName = oldSpec.VolumeAttributesClassName
		}
	}
	if !equality.Semantic.DeepEqual(spec, oldSpec) {
		errs = append(errs, field.Forbidden(field.NewPath("spec"),
			"spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims"))
	}
	storagePath := field.NewPath("spec", "resources", "requests", "storage")
	size, oldSize := pvc.Spec.Resources.Requests[corev1.ResourceStorage], old.Spec.Resources.Requests[corev1.ResourceStorage]
	if capacity := old.Status.Capacity[corev1.ResourceStorage]; size.Cmp(oldSize) < 0 && size.Cmp(capacity) <= 0 {
		errs = append(errs, field.Forbidden(storagePath, "field can not be less than status.capacity"))
	}
	if old.Spec.VolumeAttributesClassName != nil {
		vacPath := field.NewPath("spec", "volumeAttributesClassName")
		switch {
		case pvc.Spec.VolumeAttributesClassName == nil:
			errs = append(errs, field.Forbidden(vacPath, "update from non-nil value to nil is forbidden"))
		case *pvc.Spec.VolumeAttributesClassName == "":
			errs = append(errs, field.Forbidden(vacPath, "update from non-nil value to an empty string is forbidden"))
		}
	}
	return errs
}

func persistentVolumeClaimCells(pvc *corev1.PersistentVolumeClaim) []any {
	phase := string(pvc.Status.Phase)
	if pvc.DeletionTimestamp != nil {
		phase = "Terminating"
	}
	capacity, modes := "", ""
	if pvc.Spec.VolumeName != "" {
		modes = accessModesString(pvc.Status.AccessModes)
		q := pvc.Status.Capacity[corev1.ResourceStorage]
		capacity = q.String()
	}
	class := ""
	if c, ok := pvc.Annotations[corev1.BetaStorageClassAnnotation]; ok {
		class = c
	} else if pvc.Spec.StorageClassName != nil {
		class = *pvc.Spec.StorageClassName
	}
	return []any{phase, pvc.Spec.VolumeName, capacity, modes, class, orUnset(pvc.Spec.VolumeAttributesClassName),
		age(pvc.CreationTimestamp), volumeModeString(pvc.Spec.VolumeMode)}
}

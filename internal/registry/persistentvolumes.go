package registry

import (
	"path"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func persistentvolumes() *Resource {
	return &Resource{
		GroupVersionResource: schema.GroupVersionResource{Group: "", Version: "v1", Resource: "persistentvolumes"},
		Kind:                 "PersistentVolume",
		SingularName:         "persistentvolume",
		Namespaced:           false,
		ShortNames:           []string{"pv"},
		Categories:           nil,
		New:                  func() runtime.Object { return &corev1.PersistentVolume{} },
		NewList:              func() runtime.Object { return &corev1.PersistentVolumeList{} },
		Status:               true,
		Default:              func(obj runtime.Object) { defaultPersistentVolume(obj.(*corev1.PersistentVolume)) },
		PrepareForCreate: func(obj runtime.Object) {
			now := metav1.Now()
			obj.(*corev1.PersistentVolume).Status = corev1.PersistentVolumeStatus{Phase: corev1.VolumePending, LastPhaseTransitionTime: &now}
		},
		Validate: func(obj runtime.Object) field.ErrorList {
			return validatePersistentVolume(obj.(*corev1.PersistentVolume))
		},
		ValidateUpdate: func(obj, old runtime.Object) field.ErrorList {
			return validatePersistentVolumeUpdate(obj.(*corev1.PersistentVolume), old.(*corev1.PersistentVolume))
		},
		Fields: func(obj runtime.Object) fields.Set {
			// Kubernetes keeps this unprefixed key for old clients.
			return fields.Set{"name": obj.(*corev1.PersistentVolume).Name}
		},
		Table: &Table{
			Columns: []metav1.TableColumnDefinition{
				column("Capacity", "string", corev1.PersistentVolumeSpec{}.SwaggerDoc()["capacity"]),
				column("Access Modes", "string", corev1.PersistentVolumeSpec{}.SwaggerDoc()["accessModes"]),
				column("Reclaim Policy", "string", corev1.PersistentVolumeSpec{}.SwaggerDoc()["persistentVolumeReclaimPolicy"]),
				column("Status", "string", corev1.PersistentVolumeStatus{}.SwaggerDoc()["phase"]),
				column("Claim", "string", corev1.PersistentVolumeSpec{}.SwaggerDoc()["claimRef"]),
				column("StorageClass", "string", "StorageClass of the pv"),
				column("VolumeAttributesClass", "string", "VolumeAttributesClass of the pv"),
				column("Reason", "string", corev1.PersistentVolumeStatus{}.SwaggerDoc()["reason"]),
				ageColumn(),
				wideColumn("VolumeMode", "string", corev1.PersistentVolumeSpec{}.SwaggerDoc()["volumeMode"]),
			},
			Cells: func(obj runtime.Object) []any { return persistentVolumeCells(obj.(*corev1.PersistentVolume)) },
		},
	}
}

func defaultPersistentVolume(pv *corev1.PersistentVolume) {
	if pv.Status.Phase == "" {
		pv.Status.Phase = corev1.VolumePending
	}
	if pv.Spec.PersistentVolumeReclaimPolicy == "" {
		pv.Spec.PersistentVolumeReclaimPolicy = corev1.PersistentVolumeReclaimRetain
	}
	if pv.Spec.VolumeMode == nil {
		pv.Spec.VolumeMode = new(corev1.PersistentVolumeFilesystem)
	}
	roundResourceList(pv.Spec.Capacity)
	src := &pv.Spec.PersistentVolumeSource
	if src.HostPath != nil && src.HostPath.Type == nil {
		src.HostPath.Type = new(corev1.HostPathUnset)
	}
	if src.ISCSI != nil && src.ISCSI.ISCSIInterface == "" {
		src.ISCSI.ISCSIInterface = "default"
	}
	if r := src.RBD; r != nil {
		defaultRBD(&r.RBDPool, &r.RadosUser, &r.Keyring)
	}
	defaultAzureDisk(src.AzureDisk)
	if s := src.ScaleIO; s != nil {
		defaultScaleIO(&s.StorageMode, &s.FSType)
	}
}

var (
	accessModes = []corev1.PersistentVolumeAccessMode{
		corev1.ReadOnlyMany, corev1.ReadWriteMany, corev1.ReadWriteOnce, corev1.ReadWriteOncePod,
	}
	reclaimPolicies = []corev1.PersistentVolumeReclaimPolicy{
		corev1.PersistentVolumeReclaimDelete, corev1.PersistentVolumeReclaimRecycle, corev1.PersistentVolumeReclaimRetain,
	}
	volumeModes = []corev1.PersistentVolumeMode{corev1.PersistentVolumeBlock, corev1.PersistentVolumeFilesystem}
)

// validatePersistentVolume checks access modes, a storage capacity, the
// reclaim policy and exactly one volume source.
func validatePersistentVolume(pv *corev1.PersistentVolume) field.ErrorList {
	specPath := field.NewPath("spec")
	spec := &pv.Spec
	errs := validateObjectMeta(&pv.ObjectMeta, false, nameIsDNSSubdomain)
	if len(spec.AccessModes) == 0 {
		errs = append(errs, field.Required(specPath.Child("accessModes"), ""))
	}
	errs = append(errs, validateAccessModes(spec.AccessModes, specPath.Child("accessModes"))...)

	capPath := specPath.Child("capacity")
	if len(spec.Capacity) == 0 {
		errs = append(errs, field.Required(capPath, ""))
	}
	if _, ok := spec.Capacity[corev1.ResourceStorage]; !ok || len(spec.Capacity) > 1 {
		errs = append(errs, field.NotSupported(capPath, spec.Capacity, []corev1.ResourceName{corev1.ResourceStorage}))
	}
	for _, name := range sortedResourceNames(spec.Capacity) {
		if q := spec.Capacity[name]; q.Sign() <= 0 {
			errs = append(errs, field.Invalid(capPath.Key(string(name)), q.String(), "must be greater than zero"))
		}
	}
	if spec.PersistentVolumeReclaimPolicy != "" {
		errs = append(errs, validateOneOf(specPath.Child("persistentVolumeReclaimPolicy"), spec.PersistentVolumeReclaimPolicy, reclaimPolicies...)...)
	}

	src := &spec.PersistentVolumeSource
	set := setFields(*src)
	switch {
	case len(set) == 0:
		errs = append(errs, field.Required(specPath, "must specify a volume type"))
	case len(set) > 1:
		for _, extra := range set[1:] {
			errs = append(errs, field.Forbidden(specPath.Child(extra), "may not specify more than 1 volume type"))
		}
	case src.HostPath != nil:
		errs = append(errs, validateHostPath(src.HostPath, specPath.Child("hostPath"))...)
		if path.Clean(src.HostPath.Path) == "/" && spec.PersistentVolumeReclaimPolicy == corev1.PersistentVolumeReclaimRecycle {
			errs = append(errs, field.Forbidden(specPath.Child("persistentVolumeReclaimPolicy"), "may not be 'recycle' for a hostPath mount of '/'"))
		}
	case src.Local != nil:
		lp := specPath.Child("local")
		if src.Local.Path == "" {
			errs = append(errs, field.Required(lp.Child("path"), ""))
		} else {
			errs = append(errs, validatePathNoBacksteps(src.Local.Path, lp.Child("path"))...)
		}
		if spec.NodeAffinity == nil || spec.NodeAffinity.Required == nil {
			errs = append(errs, field.Required(specPath.Child("nodeAffinity"), "Local volume requires node affinity"))
		}
	case src.NFS != nil:
		errs = append(errs, validateNFS(src.NFS, specPath.Child("nfs"))...)
	case src.CSI != nil:
		cp := specPath.Child("csi")
		if src.CSI.Driver == "" {
			errs = append(errs, field.Required(cp.Child("driver"), ""))
		}
		if src.CSI.VolumeHandle == "" {
			errs = append(errs, field.Required(cp.Child("volumeHandle"), ""))
		}
	}
	if na := spec.NodeAffinity; na != nil && na.Required != nil {
		rp := specPath.Child("nodeAffinity", "required")
		if len(na.Required.NodeSelectorTerms) == 0 {
			errs = append(errs, field.Required(rp.Child("nodeSelectorTerms"), "must have at least one node selector term"))
		}
		for i, term := range na.Required.NodeSelectorTerms {
			errs = append(errs, validateNodeSelectorTerm(term, rp.Child("nodeSelectorTerms").Index(i))...)
		}
	}
	if spec.StorageClassName != "" {
		errs = append(errs, validateName(spec.StorageClassName, nameIsDNSSubdomain, specPath.Child("storageClassName"))...)
	}
	if spec.VolumeMode != nil {
		errs = append(errs, validateOneOf(specPath.Child("volumeMode"), *spec.VolumeMode, volumeModes...)...)
	}
	if vac := spec.VolumeAttributesClassName; vac != nil {
		if *vac == "" {
			errs = append(errs, field.Required(specPath.Child("volumeAttributesClassName"), "an empty string is disallowed"))
		} else {
			errs = append(errs, validateName(*vac, nameIsDNSSubdomain, specPath.Child("volumeAttributesClassName"))...)
		}
		if src.CSI == nil {
			errs = append(errs, field.Required(specPath.Child("csi"), "has to be specified when using volumeAttributesClassName"))
		}
	}
	return errs
}

// validateAccessModes checks each mode, and that ReadWriteOncePod stands
// alone.
func validateAccessModes(modes []corev1.PersistentVolumeAccessMode, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	oncePod, other := false, false
	for _, m := range modes {
		switch {
		case !slices.Contains(accessModes, m):
			errs = append(errs, field.NotSupported(path, m, accessModes))
		case m == corev1.ReadWriteOncePod:
			oncePod = true
		default:
			other = true
		}
	}
	if oncePod && other {
		errs = append(errs, field.Forbidden(path, "may not use ReadWriteOncePod with other access modes"))
	}
	return errs
}

// validatePersistentVolumeUpdate keeps the volume source, the volume mode
// and a set node affinity as they were.
func validatePersistentVolumeUpdate(pv, old *corev1.PersistentVolume) field.ErrorList {
	specPath := field.NewPath("spec")
	errs := validateObjectMetaUpdate(&pv.ObjectMeta, &old.ObjectMeta)
	src := pv.Spec.PersistentVolumeSource.DeepCopy()
	// A CSI volume may gain the secret used to expand it.
	if old.Spec.CSI != nil && old.Spec.CSI.ControllerExpandSecretRef == nil && src.CSI != nil {
		src.CSI.ControllerExpandSecretRef = nil
	}
	if !equality.Semantic.DeepEqual(*src, old.Spec.PersistentVolumeSource) {
		errs = append(errs, field.Forbidden(specPath.Child("persistentvolumesource"), "spec.persistentvolumesource is immutable after creation"))
	}
	if !equality.Semantic.DeepEqual(pv.Spec.VolumeMode, old.Spec.VolumeMode) {
		errs = append(errs, field.Invalid(specPath.Child("volumeMode"), pv.Spec.VolumeMode, "field is immutable"))
	}
	if old.Spec.NodeAffinity != nil && !equality.Semantic.DeepEqual(pv.Spec.NodeAffinity, old.Spec.NodeAffinity) {
		errs = append(errs, field.Invalid(specPath.Child("nodeAffinity"), pv.Spec.NodeAffinity, "field is immutable"))
	}
	if old.Spec.VolumeAttributesClassName != nil && pv.Spec.VolumeAttributesClassName == nil {
		errs = append(errs, field.Forbidden(specPath.Child("volumeAttributesClassName"), "update from non-nil value to nil is forbidden"))
	}
	return errs
}

func persistentVolumeCells(pv *corev1.PersistentVolume) []any {
	claim := ""
	if ref := pv.Spec.ClaimRef; ref != nil {
		claim = ref.Namespace + "/" + ref.Name
	}
	phase := string(pv.Status.Phase)
	if pv.DeletionTimestamp != nil {
		phase = "Terminating"
	}
	capacity := pv.Spec.Capacity[corev1.ResourceStorage]
	class := pv.Spec.StorageClassName
	if c, ok := pv.Annotations[corev1.BetaStorageClassAnnotation]; ok {
		class = c
	}
	return []any{capacity.String(), accessModesString(pv.Spec.AccessModes), string(pv.Spec.PersistentVolumeReclaimPolicy),
		phase, claim, class, orUnset(pv.Spec.VolumeAttributesClassName), pv.Status.Reason,
		age(pv.CreationTimestamp), volumeModeString(pv.Spec.VolumeMode)}
}

// accessModesString abbreviates access modes as kubectl does: "RWO,ROX".
func accessModesString(modes []corev1.PersistentVolumeAccessMode) string {
	var out []string
	for _, m := range []struct {
		mode  corev1.PersistentVolumeAccessMode
		short string
	}{
		{corev1.ReadWriteOnce, "RWO"},
		{corev1.ReadOnlyMany, "ROX"},
		{corev1.ReadWriteMany, "RWX"},
		{corev1.ReadWriteOncePod, "RWOP"},
	} {
		if slices.Contains(modes, m.mode) {
			out = append(out, m.short)
		}
	}
	return strings.Join(out, ",")
}

func volumeModeString(m *corev1.PersistentVolumeMode) string {
	if m == nil {
		return "<unset>"
	}
	return string(*m)
}

func orUnset(s *string) string {
	if s == nil {
		return "<unset>"
	}
	return *s
}

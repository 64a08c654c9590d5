package admission

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
)

// Finalizers of kube-apiserver's StorageObjectInUseProtection plugin: a
// claim a pod uses, or a volume bound to a claim, is only removed once the
// storage-protection controller lets it go.
const (
	PVCProtectionFinalizer = "kubernetes.io/pvc-protection"
	PVProtectionFinalizer  = "kubernetes.io/pv-protection"
)

// protectStorage adds the protection finalizer to a new claim or volume.
func protectStorage(obj any) {
	switch o := obj.(type) {
	case *corev1.PersistentVolumeClaim:
		if !slices.Contains(o.Finalizers, PVCProtectionFinalizer) {
			o.Finalizers = append(o.Finalizers, PVCProtectionFinalizer)
		}
	case *corev1.PersistentVolume:
		if !slices.Contains(o.Finalizers, PVProtectionFinalizer) {
			o.Finalizers = append(o.Finalizers, PVProtectionFinalizer)
		}
	}
}

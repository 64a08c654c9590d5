package admission

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"

	"github.com/skiff-sh/skiff/internal/store"
)

// Annotations that mark a StorageClass as the cluster's default.
const (
	defaultClassAnnotation     = "storageclass.kubernetes.io/is-default-class"
	betaDefaultClassAnnotation = "storageclass.beta.kubernetes.io/is-default-class"
)

// defaultStorageClass is kube-apiserver's DefaultStorageClass plugin: a
// claim created without a class gets the default one. With several
// defaults the newest wins (then the name), as upstream; with none the
// claim keeps no class.
func (c *Chain) defaultStorageClass(ctx context.Context, pvc *corev1.PersistentVolumeClaim) error {
	if pvc.Spec.StorageClassName != nil {
		return nil
	}
	if _, ok := pvc.Annotations[corev1.BetaStorageClassAnnotation]; ok {
		return nil
	}
	res, err := c.store.List(ctx, "/registry/storage.k8s.io/storageclasses/", store.ListOptions{})
	if err != nil {
		return fmt.Errorf("list storage classes: %w", err)
	}
	var best *storagev1.StorageClass
	for _, o := range res.Items {
		sc, ok := o.(*storagev1.StorageClass)
		if !ok || !IsDefaultClass(sc) {
			continue
		}
		if best == nil || sc.CreationTimestamp.After(best.CreationTimestamp.Time) ||
			sc.CreationTimestamp.Equal(&best.CreationTimestamp) && sc.Name < best.Name {
			best = sc
		}
	}
	if best != nil {
		name := best.Name
		pvc.Spec.StorageClassName = &name
	}
	return nil
}

// IsDefaultClass reports whether sc is annotated as the default class.
func IsDefaultClass(sc *storagev1.StorageClass) bool {
	return sc.Annotations[defaultClassAnnotation] == "true" || sc.Annotations[betaDefaultClassAnnotation] == "true"
}

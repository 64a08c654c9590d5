package admission

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiff-sh/skiff/internal/store"
	"github.com/skiff-sh/skiff/internal/volumematch"
)

// claimResize is kube-apiserver's PersistentVolumeClaimResize plugin: a
// claim may ask for more storage only once bound, and only if its class,
// unchanged, allows volume expansion; nothing would grow it otherwise
// (the built-in local-path class does not). Status writes are not asked.
func (c *Chain) claimResize(ctx context.Context, pvc, old *corev1.PersistentVolumeClaim) error {
	size, oldSize := pvc.Spec.Resources.Requests[corev1.ResourceStorage], old.Spec.Resources.Requests[corev1.ResourceStorage]
	if size.Cmp(oldSize) <= 0 {
		return nil
	}
	forbid := func(msg string) error {
		return apierrors.NewForbidden(schema.GroupResource{Resource: "persistentvolumeclaims"}, pvc.Name, errors.New(msg))
	}
	if old.Status.Phase != corev1.ClaimBound {
		return forbid("Only bound persistent volume claims can be expanded")
	}
	allowed, err := c.classAllowsExpansion(ctx, volumematch.ClassOf(pvc), volumematch.ClassOf(old))
	if err != nil {
		return err
	}
	if !allowed {
		return forbid("only dynamically provisioned pvc can be resized and the storageclass that provisions the pvc must support resize")
	}
	return nil
}

func (c *Chain) classAllowsExpansion(ctx context.Context, class, oldClass string) (bool, error) {
	if class == "" || class != oldClass {
		return false, nil
	}
	obj, err := c.store.Get(ctx, "/registry/storage.k8s.io/storageclasses/"+class)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("storage class %s: %w", class, err)
	}
	sc, ok := obj.(*storagev1.StorageClass)
	return ok && sc.AllowVolumeExpansion != nil && *sc.AllowVolumeExpansion, nil
}

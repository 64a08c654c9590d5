package deployment

// Ownership of ReplicaSets, as Kubernetes' ControllerRefManager settles it:
// a Deployment keeps the ReplicaSets it controls that its selector still
// matches, releases the ones it no longer matches, and adopts orphans it
// matches, unless it is being deleted.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
)

// claimReplicaSets returns the ReplicaSets d controls after adopting and
// releasing; adopted ones are returned as the API stored them.
func (c *Controller) claimReplicaSets(ctx context.Context, d *appsv1.Deployment) ([]*appsv1.ReplicaSet, error) {
	all, err := c.replicaSets.ReplicaSets(d.Namespace).List(labels.Everything())
	if err != nil {
		return nil, err
	}
	selector, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return nil, fmt.Errorf("deployment %s/%s has invalid label selector: %w", d.Namespace, d.Name, err)
	}
	// Whether d may adopt is asked of the API, once, and only when there is
	// an orphan: the cache may not show yet that d is being deleted.
	var canAdoptErr error
	checked := false
	canAdopt := func() error {
		if !checked {
			checked = true
			canAdoptErr = c.recheckDeletion(ctx, d)
		}
		return canAdoptErr
	}
	var claimed []*appsv1.ReplicaSet
	var errs []error
	for _, rs := range all {
		ref := metav1.GetControllerOf(rs)
		match := selector.Matches(labels.Set(rs.Labels))
		switch {
		case ref != nil && ref.UID != d.UID:
			// Someone else's.
		case ref != nil && match:
			claimed = append(claimed, rs)
		case ref != nil:
			// Ours, but the selector no longer matches: let it go, unless
			// we are going away ourselves.
			if d.DeletionTimestamp == nil {
				if err := c.release(ctx, d, rs); err != nil {
					errs = append(errs, err)
				}
			}
		case d.DeletionTimestamp != nil || !match || rs.DeletionTimestamp != nil || rs.Namespace != d.Namespace:
			// An orphan we do not take.
		default:
			if err := canAdopt(); err != nil {
				errs = append(errs, fmt.Errorf("can't adopt ReplicaSet %s/%s (%s): %w", rs.Namespace, rs.Name, rs.UID, err))
				continue
			}
			adopted, err := c.adopt(ctx, d, rs)
			if apierrors.IsNotFound(err) {
				continue
			}
			if err != nil {
				errs = append(errs, err)
				continue
			}
			claimed = append(claimed, adopted)
		}
	}
	return claimed, errors.Join(errs...)
}

// recheckDeletion reads d from the API: it may adopt only if it is still
// the same object and not being deleted.
func (c *Controller) recheckDeletion(ctx context.Context, d *appsv1.Deployment) error {
	fresh, err := c.client.AppsV1().Deployments(d.Namespace).Get(ctx, d.Name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if fresh.UID != d.UID {
		return fmt.Errorf("original Deployment %s/%s is gone: got uid %s, wanted %s: %w", d.Namespace, d.Name, fresh.UID, d.UID, errGone)
	}
	if fresh.DeletionTimestamp != nil {
		return fmt.Errorf("%s/%s has just been deleted at %v", d.Namespace, d.Name, fresh.DeletionTimestamp)
	}
	return nil
}

// adopt makes d the controller of rs. The patch carries rs's UID, so that
// it fails on a new object of the same name.
func (c *Controller) adopt(ctx context.Context, d *appsv1.Deployment, rs *appsv1.ReplicaSet) (*appsv1.ReplicaSet, error) {
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"ownerReferences": []metav1.OwnerReference{*metav1.NewControllerRef(d, controllerKind)},
		"uid":             rs.UID,
	}})
	if err != nil {
		return nil, err
	}
	return c.client.AppsV1().ReplicaSets(rs.Namespace).Patch(ctx, rs.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
}

// release removes d's controller reference from rs.
func (c *Controller) release(ctx context.Context, d *appsv1.Deployment, rs *appsv1.ReplicaSet) error {
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"ownerReferences": []map[string]any{{"$patch": "delete", "uid": d.UID}},
		"uid":             rs.UID,
	}})
	if err != nil {
		return err
	}
	_, err = c.client.AppsV1().ReplicaSets(rs.Namespace).Patch(ctx, rs.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
	if apierrors.IsNotFound(err) || apierrors.IsInvalid(err) || apierrors.IsConflict(err) {
		// Gone, or replaced by an object with another UID (the only conflict
		// a patch without resourceVersion meets): nothing to release.
		return nil
	}
	return err
}

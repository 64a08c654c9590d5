package replicaset

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
)

// claimer is kube's PodControllerRefManager for one sync of one
// ReplicaSet: it keeps the pods the ReplicaSet controls and that still
// match, adopts matching orphans and releases its pods that stopped
// matching.
type claimer struct {
	c        *Controller
	rs       *appsv1.ReplicaSet
	selector labels.Selector
	// canAdopt is asked once, and only when there is an orphan to adopt.
	checked     bool
	canAdoptErr error
}

// claim returns the pods that belong to the ReplicaSet after adoption and
// release. The pods are the lister's: not to be modified.
func (m *claimer) claim(ctx context.Context, pods []*corev1.Pod) ([]*corev1.Pod, error) {
	var claimed []*corev1.Pod
	var errs []error
	for _, pod := range pods {
		ok, err := m.claimOne(ctx, pod)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if ok {
			claimed = append(claimed, pod)
		}
	}
	return claimed, errors.Join(errs...)
}

func (m *claimer) claimOne(ctx context.Context, pod *corev1.Pod) (bool, error) {
	matches := m.selector.Matches(labels.Set(pod.Labels))
	if ref := metav1.GetControllerOfNoCopy(pod); ref != nil {
		if ref.UID != m.rs.UID {
			return false, nil // someone else's
		}
		if matches {
			return true, nil // ours, even while we are deleted: keeping takes no write
		}
		if m.rs.DeletionTimestamp != nil {
			return false, nil
		}
		if err := m.release(ctx, pod); err != nil && !apierrors.IsNotFound(err) {
			return false, err
		}
		return false, nil
	}
	// An orphan.
	if m.rs.DeletionTimestamp != nil || !matches || pod.DeletionTimestamp != nil || pod.Namespace != m.rs.Namespace {
		return false, nil
	}
	if err := m.adopt(ctx, pod); err != nil {
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

// canAdopt reads the ReplicaSet again past the cache: the lister may not
// show yet that it is being deleted, and adopting then would hand the
// pod to the garbage collector (kube's RecheckDeletionTimestamp).
func (m *claimer) canAdopt(ctx context.Context) error {
	if m.checked {
		return m.canAdoptErr
	}
	m.checked = true
	fresh, err := m.c.client.AppsV1().ReplicaSets(m.rs.Namespace).Get(ctx, m.rs.Name, metav1.GetOptions{})
	switch {
	case err != nil:
		m.canAdoptErr = err
	case fresh.UID != m.rs.UID:
		m.canAdoptErr = fmt.Errorf("original ReplicaSet %s/%s is gone: got uid %s, wanted %s", m.rs.Namespace, m.rs.Name, fresh.UID, m.rs.UID)
	case fresh.DeletionTimestamp != nil:
		m.canAdoptErr = fmt.Errorf("%s/%s has just been deleted at %s", m.rs.Namespace, m.rs.Name, fresh.DeletionTimestamp)
	}
	return m.canAdoptErr
}

// adopt makes the ReplicaSet the pod's controller. The pod's uid in the
// patch makes it fail on a pod re-made under the same name; the API
// refuses it too if another controller took the pod meanwhile.
func (m *claimer) adopt(ctx context.Context, pod *corev1.Pod) error {
	if err := m.canAdopt(ctx); err != nil {
		return fmt.Errorf("can't adopt Pod %s/%s (%s): %w", pod.Namespace, pod.Name, pod.UID, err)
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"ownerReferences": []metav1.OwnerReference{*controllerRef(m.rs)},
		"uid":             pod.UID,
	}})
	if err != nil {
		return err
	}
	return m.c.patchPod(ctx, pod, patch)
}

// release removes the ReplicaSet's owner reference from the pod.
func (m *claimer) release(ctx context.Context, pod *corev1.Pod) error {
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"ownerReferences": []map[string]any{{"$patch": "delete", "uid": m.rs.UID}},
		"uid":             pod.UID,
	}})
	if err != nil {
		return err
	}
	err = m.c.patchPod(ctx, pod, patch)
	if apierrors.IsNotFound(err) || apierrors.IsInvalid(err) {
		// Gone, or re-made under the same name (the uid no longer
		// matches): either way it is not ours to release.
		return nil
	}
	return err
}

func (c *Controller) patchPod(ctx context.Context, pod *corev1.Pod, patch []byte) error {
	_, err := c.client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
	return err
}

// controllerRef is the owner reference the ReplicaSet's pods carry.
func controllerRef(rs *appsv1.ReplicaSet) *metav1.OwnerReference {
	return metav1.NewControllerRef(rs, controllerKind)
}

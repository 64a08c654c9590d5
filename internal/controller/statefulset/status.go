package statefulset

import (
	"context"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// updateStatus writes status through the subresource when it changed.
// An update is complete once spec.replicas pods exist and all are updated
// and ready: the update revision becomes the current one
// (completeRollingUpdate). Counting against spec.replicas, not the pods
// seen, keeps a missing pod from completing it early, which would make
// pods below a partition from the new template. OnDelete completes too,
// as upstream since 1.36 (kubernetes#136833).
func (c *Controller) updateStatus(ctx context.Context, set *appsv1.StatefulSet, status *appsv1.StatefulSetStatus) error {
	if n := int32(replicaCount(set)); status.Replicas == n && status.UpdatedReplicas == n && status.ReadyReplicas == n {
		status.CurrentReplicas = status.UpdatedReplicas
		status.CurrentRevision = status.UpdateRevision
	}
	status.Conditions = set.Status.Conditions
	if !apiequality.Semantic.DeepEqual(*status, set.Status) {
		fresh := set.DeepCopy()
		fresh.Status = *status
		if _, err := c.client.AppsV1().StatefulSets(set.Namespace).UpdateStatus(ctx, fresh, metav1.UpdateOptions{}); err != nil {
			if apierrors.IsNotFound(err) {
				return nil
			}
			return err
		}
	}
	// Availability comes minReadySeconds after readiness, with no event.
	if set.Spec.MinReadySeconds > 0 && status.ReadyReplicas != status.AvailableReplicas {
		c.queue.AddAfter(setKey(set), time.Duration(set.Spec.MinReadySeconds)*time.Second)
	}
	return nil
}

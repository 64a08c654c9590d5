package daemonset

import (
	"context"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// calculateStatus counts nodes as Kubernetes' updateDaemonSetStatus does:
// a node that should run the DaemonSet is desired, scheduled when it has
// a pod, and its oldest pod decides ready, available and updated; a node
// that should not but has a pod is misscheduled.
func calculateStatus(ds *appsv1.DaemonSet, nodes []*corev1.Node, byNode map[string][]*corev1.Pod, hash string, now time.Time) appsv1.DaemonSetStatus {
	s := appsv1.DaemonSetStatus{
		ObservedGeneration: ds.Status.ObservedGeneration,
		CollisionCount:     ds.Status.CollisionCount,
		Conditions:         ds.Status.Conditions,
	}
	for _, node := range nodes {
		run, _ := shouldRun(node, ds)
		pods := byNode[node.Name]
		if !run {
			if len(pods) > 0 {
				s.NumberMisscheduled++
			}
			continue
		}
		s.DesiredNumberScheduled++
		if len(pods) == 0 {
			continue
		}
		s.CurrentNumberScheduled++
		p := pods[0]
		if podReady(p) {
			s.NumberReady++
			if podAvailable(p, ds.Spec.MinReadySeconds, now) {
				s.NumberAvailable++
			}
		}
		if podUpdated(p, ds, hash) {
			s.UpdatedNumberScheduled++
		}
	}
	s.NumberUnavailable = s.DesiredNumberScheduled - s.NumberAvailable
	return s
}

// updateStatus writes the status through the subresource when it
// changed; observed says the sync acted on this generation.
func (c *Controller) updateStatus(ctx context.Context, ds *appsv1.DaemonSet, nodes []*corev1.Node, byNode map[string][]*corev1.Pod, hash string, observed bool) error {
	s := calculateStatus(ds, nodes, byNode, hash, c.now())
	if observed {
		s.ObservedGeneration = ds.Generation
	}
	if !apiequality.Semantic.DeepEqual(s, ds.Status) {
		fresh := ds.DeepCopy()
		fresh.Status = s
		if _, err := c.client.AppsV1().DaemonSets(ds.Namespace).UpdateStatus(ctx, fresh, metav1.UpdateOptions{}); err != nil {
			if apierrors.IsNotFound(err) {
				return nil
			}
			return err
		}
	}
	// Availability comes minReadySeconds after readiness, with no event.
	if ds.Spec.MinReadySeconds > 0 && s.NumberReady != s.NumberAvailable {
		c.queue.AddAfter(dsKey(ds), time.Duration(ds.Spec.MinReadySeconds)*time.Second)
	}
	return nil
}

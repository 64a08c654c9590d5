package daemonset

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/skiff-sh/skiff/internal/controller/history"
)

// manage makes sure each node that should run the DaemonSet has exactly
// one pod of it, and nodes that should not have none (Kubernetes'
// manage and podsShouldBeOnNode).
func (c *Controller) manage(ctx context.Context, ds *appsv1.DaemonSet, nodes []*corev1.Node, byNode map[string][]*corev1.Pod, hash string) error {
	var toCreate []string
	var toDelete []*corev1.Pod
	known := map[string]bool{}
	for _, node := range nodes {
		known[node.Name] = true
		create, del := c.podsShouldBeOnNode(ds, node, byNode[node.Name], hash)
		if create {
			toCreate = append(toCreate, node.Name)
		}
		toDelete = append(toDelete, del...)
	}
	// A pod pinned to a node that does not exist is never scheduled, so
	// the pod garbage collector (which only takes bound pods of missing
	// nodes) would never take it.
	for name, pods := range byNode {
		if known[name] {
			continue
		}
		for _, p := range pods {
			if p.Spec.NodeName == "" && p.DeletionTimestamp == nil {
				toDelete = append(toDelete, p)
			}
		}
	}
	return c.syncNodes(ctx, ds, toDelete, toCreate, hash)
}

// podsShouldBeOnNode says whether node needs a new pod and which of its
// pods must go. pods are the node's, oldest first.
func (c *Controller) podsShouldBeOnNode(ds *appsv1.DaemonSet, node *corev1.Node, pods []*corev1.Pod, hash string) (create bool, toDelete []*corev1.Pod) {
	run, keep := shouldRun(node, ds)
	switch {
	case run && len(pods) == 0:
		// A pod still terminating counts: the next one waits for it, as
		// two daemons on one node may clash (host ports, files).
		return true, nil
	case !keep:
		for _, p := range pods {
			if p.DeletionTimestamp == nil {
				toDelete = append(toDelete, p)
			}
		}
		return false, toDelete
	}
	var running []*corev1.Pod
	for _, p := range pods {
		if p.DeletionTimestamp != nil {
			continue
		}
		switch p.Status.Phase {
		case corev1.PodFailed:
			// Deleted here, replaced by the next sync once it is gone.
			backoffKey := fmt.Sprintf("%s/%d/%s", ds.UID, ds.Status.ObservedGeneration, node.Name)
			now := c.failed.Clock.Now()
			if c.failed.IsInBackOffSinceUpdate(backoffKey, now) {
				c.queue.AddAfter(dsKey(ds), c.failed.Get(backoffKey))
				continue
			}
			c.failed.Next(backoffKey, now)
			c.recorder.Eventf(ds, corev1.EventTypeWarning, ReasonFailedDaemonPod,
				"Found failed daemon pod %s/%s on node %s, will try to kill it", p.Namespace, p.Name, node.Name)
			toDelete = append(toDelete, p)
		case corev1.PodSucceeded:
			c.recorder.Eventf(ds, corev1.EventTypeNormal, ReasonSucceededDaemonPod,
				"Found succeeded daemon pod %s/%s on node %s, will try to delete it", p.Namespace, p.Name, node.Name)
			toDelete = append(toDelete, p)
		default:
			running = append(running, p)
		}
	}
	if !surging(ds) {
		if len(running) > 1 {
			toDelete = append(toDelete, running[1:]...) // keep the oldest
		}
		return false, toDelete
	}
	if len(running) <= 1 {
		// A surging DaemonSet keeps a pod on the node at all times.
		return run && len(running) == 0, toDelete
	}
	// A surge keeps the oldest new pod and the oldest old one, and lets
	// the old go once the new is available (or the old is not ready).
	var oldestNew, oldestOld *corev1.Pod
	for _, p := range running {
		switch {
		case p.Labels[history.HashLabel] == hash && oldestNew == nil:
			oldestNew = p
		case p.Labels[history.HashLabel] != hash && oldestOld == nil:
			oldestOld = p
		default:
			toDelete = append(toDelete, p)
		}
	}
	if oldestNew != nil && oldestOld != nil &&
		(!podReady(oldestOld) || podAvailable(oldestNew, ds.Spec.MinReadySeconds, c.now())) {
		toDelete = append(toDelete, oldestOld)
	}
	return false, toDelete
}

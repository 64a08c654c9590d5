package daemonset

import (
	"context"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// surging says whether a rolling update starts the new pod beside the
// old one rather than after it.
func surging(ds *appsv1.DaemonSet) bool {
	ru := ds.Spec.UpdateStrategy.RollingUpdate
	if ds.Spec.UpdateStrategy.Type != appsv1.RollingUpdateDaemonSetStrategyType || ru == nil || ru.MaxSurge == nil {
		return false
	}
	n, err := intstr.GetScaledValueFromIntOrPercent(ru.MaxSurge, 1, true)
	return err == nil && n > 0
}

// budgets are maxSurge and maxUnavailable scaled to the desired number
// of pods, rounded up; both zero would stall, so unavailable becomes 1.
func budgets(ds *appsv1.DaemonSet, desired int) (maxSurge, maxUnavailable int) {
	ru := ds.Spec.UpdateStrategy.RollingUpdate
	if ru != nil {
		if ru.MaxSurge != nil {
			maxSurge, _ = intstr.GetScaledValueFromIntOrPercent(ru.MaxSurge, desired, true)
		}
		if ru.MaxUnavailable != nil {
			maxUnavailable, _ = intstr.GetScaledValueFromIntOrPercent(ru.MaxUnavailable, desired, true)
		}
	}
	if maxSurge == 0 && maxUnavailable == 0 {
		maxUnavailable = 1
	}
	return maxSurge, maxUnavailable
}

// updatedAndOld finds the one current and the one old pod on a node;
// ok is false when there are more, which manage sorts out first.
func updatedAndOld(ds *appsv1.DaemonSet, pods []*corev1.Pod, hash string) (cur, old *corev1.Pod, ok bool) {
	for _, p := range pods {
		if p.DeletionTimestamp != nil {
			continue
		}
		if podUpdated(p, ds, hash) {
			if cur != nil {
				return nil, nil, false
			}
			cur = p
		} else {
			if old != nil {
				return nil, nil, false
			}
			old = p
		}
	}
	return cur, old, true
}

// rollingUpdate replaces old pods on the nodes that should run the
// DaemonSet, as Kubernetes' rollingUpdate: without surge it deletes old
// pods (an unavailable one always, counting it, and available ones while
// fewer than maxUnavailable nodes lack an available pod) and manage makes their
// replacements; with surge it starts new pods beside old ones (up to
// maxSurge at a time) and deletes the old once the new is available.
func (c *Controller) rollingUpdate(ctx context.Context, ds *appsv1.DaemonSet, nodes []*corev1.Node, byNode map[string][]*corev1.Pod, hash string) error {
	eligible := map[string][]*corev1.Pod{}
	for _, n := range nodes {
		if run, _ := shouldRun(n, ds); run {
			eligible[n.Name] = byNode[n.Name]
		}
	}
	maxSurge, maxUnavailable := budgets(ds, len(eligible))
	now := c.now()
	available := func(p *corev1.Pod) bool { return podAvailable(p, ds.Spec.MinReadySeconds, now) }

	if maxSurge == 0 {
		// Every node with a daemon pod, as upstream: an old pod on a node
		// the DaemonSet no longer schedules to (but keeps running on) is
		// replaced by nothing.
		unavailable := 0
		var replace, candidates []*corev1.Pod
		for _, pods := range byNode {
			cur, old, ok := updatedAndOld(ds, pods, hash)
			switch {
			case !ok, cur == nil && old == nil, cur != nil && old != nil:
				unavailable++ // manage is making or removing a pod here
			case cur != nil:
				if !available(cur) {
					unavailable++
				}
			case !available(old):
				// Replacing it costs no availability, but the node stays
				// unavailable meanwhile: it counts.
				replace = append(replace, old)
				unavailable++
			case unavailable < maxUnavailable:
				candidates = append(candidates, old)
			}
		}
		room := min(max(maxUnavailable-unavailable, 0), len(candidates))
		return c.syncNodes(ctx, ds, append(replace, candidates[:room]...), nil, hash)
	}

	surge := 0
	var toDelete []*corev1.Pod
	var allowed, candidates []string
	for name, pods := range eligible {
		cur, old, ok := updatedAndOld(ds, pods, hash)
		switch {
		case !ok:
			surge++
		case old == nil:
			// Nothing to update; manage makes a missing pod.
		case cur == nil:
			switch {
			case !available(old):
				allowed = append(allowed, name)
			case surge < maxSurge:
				candidates = append(candidates, name)
			}
		case !available(cur):
			surge++
		default:
			toDelete = append(toDelete, old)
		}
	}
	room := min(max(maxSurge-surge, 0), len(candidates))
	return c.syncNodes(ctx, ds, toDelete, append(allowed, candidates[:room]...), hash)
}

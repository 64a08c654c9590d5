package deployment

// The RollingUpdate strategy: grow the new ReplicaSet while all of them
// stay within spec.replicas + maxSurge, shrink the old ones while the
// available pods stay at or above spec.replicas - maxUnavailable, one step
// per sync, each step woken by the ReplicaSets' status changing.

import (
	"context"
	"fmt"
	"sort"

	appsv1 "k8s.io/api/apps/v1"
)

// rolloutRolling takes one step of a rolling update.
func (c *Controller) rolloutRolling(ctx context.Context, d *appsv1.Deployment, rsList []*appsv1.ReplicaSet) error {
	newRS, oldRSs, err := c.getAllReplicaSetsAndSyncRevision(ctx, d, rsList, true)
	if err != nil {
		return err
	}
	allRSs := append(append([]*appsv1.ReplicaSet{}, oldRSs...), newRS)

	scaledUp, err := c.reconcileNewReplicaSet(ctx, allRSs, newRS, d)
	if err != nil {
		return err
	}
	if scaledUp {
		return c.syncRolloutStatus(ctx, allRSs, newRS, d)
	}
	scaledDown, err := c.reconcileOldReplicaSets(ctx, allRSs, filterActive(oldRSs), newRS, d)
	if err != nil {
		return err
	}
	if scaledDown {
		return c.syncRolloutStatus(ctx, allRSs, newRS, d)
	}
	if deploymentComplete(d, &d.Status) {
		if err := c.cleanupDeployment(ctx, oldRSs, d); err != nil {
			return err
		}
	}
	return c.syncRolloutStatus(ctx, allRSs, newRS, d)
}

// reconcileNewReplicaSet grows the new ReplicaSet as far as maxSurge
// allows (or shrinks it to spec.replicas).
func (c *Controller) reconcileNewReplicaSet(ctx context.Context, allRSs []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet, d *appsv1.Deployment) (bool, error) {
	if size(newRS) == *d.Spec.Replicas {
		return false, nil
	}
	if size(newRS) > *d.Spec.Replicas {
		scaled, _, err := c.scaleReplicaSetAndRecordEvent(ctx, newRS, *d.Spec.Replicas, d)
		return scaled, err
	}
	want, err := newRSNewReplicas(d, allRSs, newRS)
	if err != nil {
		return false, err
	}
	scaled, _, err := c.scaleReplicaSetAndRecordEvent(ctx, newRS, want, d)
	return scaled, err
}

// reconcileOldReplicaSets shrinks the old ReplicaSets as far as
// maxUnavailable allows, counting the new ReplicaSet's unavailable pods
// against it, so that a new template that never becomes ready does not
// take the old pods with it. Unhealthy old pods go first: removing them
// costs no availability.
func (c *Controller) reconcileOldReplicaSets(ctx context.Context, allRSs, oldRSs []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet, d *appsv1.Deployment) (bool, error) {
	if replicaCount(oldRSs) == 0 {
		return false, nil
	}
	allPods := replicaCount(allRSs)
	minAvailable := *d.Spec.Replicas - maxUnavailable(d)
	newRSUnavailable := size(newRS) - newRS.Status.AvailableReplicas
	maxScaledDown := allPods - minAvailable - newRSUnavailable
	if maxScaledDown <= 0 {
		return false, nil
	}
	// Kubernetes drops the errors of these two steps and relies on the
	// change that caused them to wake the Deployment again; returning them
	// also retries the ones no change would wake (an unreachable API).
	oldRSs, cleaned, err := c.cleanupUnhealthyReplicas(ctx, oldRSs, d, maxScaledDown)
	if err != nil {
		return false, err
	}
	allRSs = append(append([]*appsv1.ReplicaSet{}, oldRSs...), newRS)
	scaledDown, err := c.scaleDownOldReplicaSetsForRollingUpdate(ctx, allRSs, oldRSs, d)
	if err != nil {
		return false, err
	}
	return cleaned+scaledDown > 0, nil
}

// cleanupUnhealthyReplicas shrinks old ReplicaSets by their unavailable
// pods, oldest first, up to maxCleanup in all. The ReplicaSet controller
// deletes not-ready pods before ready ones, so availability holds.
func (c *Controller) cleanupUnhealthyReplicas(ctx context.Context, oldRSs []*appsv1.ReplicaSet, d *appsv1.Deployment, maxCleanup int32) ([]*appsv1.ReplicaSet, int32, error) {
	sort.Sort(byCreation(oldRSs))
	var total int32
	for i, rs := range oldRSs {
		if total >= maxCleanup {
			break
		}
		if size(rs) == 0 || size(rs) == rs.Status.AvailableReplicas {
			continue
		}
		down := min(maxCleanup-total, size(rs)-rs.Status.AvailableReplicas)
		newSize := size(rs) - down
		if newSize > size(rs) {
			return nil, 0, fmt.Errorf("when cleaning up unhealthy replicas, got invalid request to scale down %s/%s %d -> %d", rs.Namespace, rs.Name, size(rs), newSize)
		}
		_, updated, err := c.scaleReplicaSetAndRecordEvent(ctx, rs, newSize, d)
		if err != nil {
			return nil, total, err
		}
		total += down
		oldRSs[i] = updated
	}
	return oldRSs, total, nil
}

// scaleDownOldReplicaSetsForRollingUpdate shrinks old ReplicaSets, oldest
// first, by as many pods as are available above spec.replicas -
// maxUnavailable.
func (c *Controller) scaleDownOldReplicaSetsForRollingUpdate(ctx context.Context, allRSs, oldRSs []*appsv1.ReplicaSet, d *appsv1.Deployment) (int32, error) {
	minAvailable := *d.Spec.Replicas - maxUnavailable(d)
	available := statusCount(allRSs, availableReplicas)
	if available <= minAvailable {
		return 0, nil
	}
	sort.Sort(byCreation(oldRSs))
	var total int32
	toScaleDown := available - minAvailable
	for _, rs := range oldRSs {
		if total >= toScaleDown {
			break
		}
		if size(rs) == 0 {
			continue
		}
		down := min(size(rs), toScaleDown-total)
		newSize := size(rs) - down
		if newSize > size(rs) {
			return 0, fmt.Errorf("when scaling down old RS, got invalid request to scale down %s/%s %d -> %d", rs.Namespace, rs.Name, size(rs), newSize)
		}
		if _, _, err := c.scaleReplicaSetAndRecordEvent(ctx, rs, newSize, d); err != nil {
			return total, err
		}
		total += down
	}
	return total, nil
}

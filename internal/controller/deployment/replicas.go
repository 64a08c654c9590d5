package deployment

// The arithmetic of a rollout, as kube-controller-manager does it: how far
// a rolling update may surge above and dip below spec.replicas, how big the
// new ReplicaSet may grow, how a scaling event is shared out among the
// ReplicaSets that still run pods, and in what order they are taken.

import (
	"fmt"
	"math"
	"sort"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// size is spec.replicas of a ReplicaSet; the API server defaults it to 1.
func size(rs *appsv1.ReplicaSet) int32 {
	if rs.Spec.Replicas == nil {
		return 1
	}
	return *rs.Spec.Replicas
}

// resolveFenceposts turns maxSurge and maxUnavailable into numbers of pods
// for desired replicas: percentages of surge round up, of unavailability
// down. Validation forbids both being 0; when rounding makes them both 0,
// unavailability becomes 1 so that the rollout can still move.
func resolveFenceposts(maxSurge, maxUnavailable *intstr.IntOrString, desired int32) (int32, int32, error) {
	surge, err := intstr.GetScaledValueFromIntOrPercent(intstr.ValueOrDefault(maxSurge, intstr.FromInt32(0)), int(desired), true)
	if err != nil {
		return 0, 0, err
	}
	unavailable, err := intstr.GetScaledValueFromIntOrPercent(intstr.ValueOrDefault(maxUnavailable, intstr.FromInt32(0)), int(desired), false)
	if err != nil {
		return 0, 0, err
	}
	if surge == 0 && unavailable == 0 {
		unavailable = 1
	}
	return int32(surge), int32(unavailable), nil
}

func isRollingUpdate(d *appsv1.Deployment) bool {
	return d.Spec.Strategy.Type == appsv1.RollingUpdateDeploymentStrategyType
}

func fenceposts(d *appsv1.Deployment) (surge, unavailable int32) {
	var s, u *intstr.IntOrString
	if ru := d.Spec.Strategy.RollingUpdate; ru != nil {
		s, u = ru.MaxSurge, ru.MaxUnavailable
	}
	// Validation has checked the values; a bad one counts as 0.
	surge, unavailable, _ = resolveFenceposts(s, u, *d.Spec.Replicas)
	return surge, unavailable
}

// maxSurge is how many pods a rolling update may run above spec.replicas.
func maxSurge(d *appsv1.Deployment) int32 {
	if !isRollingUpdate(d) {
		return 0
	}
	surge, _ := fenceposts(d)
	return surge
}

// maxUnavailable is how many of spec.replicas a rolling update may miss.
func maxUnavailable(d *appsv1.Deployment) int32 {
	if !isRollingUpdate(d) || *d.Spec.Replicas == 0 {
		return 0
	}
	_, unavailable := fenceposts(d)
	return min(unavailable, *d.Spec.Replicas)
}

// newRSNewReplicas is the size the new ReplicaSet may grow to now: for a
// rolling update, up to spec.replicas as long as all ReplicaSets together
// stay within spec.replicas plus maxSurge; for Recreate, spec.replicas.
func newRSNewReplicas(d *appsv1.Deployment, allRSs []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet) (int32, error) {
	switch d.Spec.Strategy.Type {
	case appsv1.RollingUpdateDeploymentStrategyType:
		current := replicaCount(allRSs)
		maxTotal := *d.Spec.Replicas + maxSurge(d)
		if current >= maxTotal {
			return size(newRS), nil
		}
		up := min(maxTotal-current, *d.Spec.Replicas-size(newRS))
		return size(newRS) + up, nil
	case appsv1.RecreateDeploymentStrategyType:
		return *d.Spec.Replicas, nil
	default:
		return 0, fmt.Errorf("deployment type %v isn't supported", d.Spec.Strategy.Type)
	}
}

// isSaturated reports whether rs holds all of the Deployment's replicas,
// available, and both agree on it (the desired-replicas annotation).
func isSaturated(d *appsv1.Deployment, rs *appsv1.ReplicaSet) bool {
	if rs == nil {
		return false
	}
	desired, ok := intAnnotation(rs, DesiredReplicasAnnotation)
	return ok && size(rs) == *d.Spec.Replicas && desired == *d.Spec.Replicas && rs.Status.AvailableReplicas == *d.Spec.Replicas
}

// proportion is the share of a scaling event (toAdd replicas, of which
// added are already given out) that rs gets: its fraction of the new
// size, capped so that the total never overshoots.
func proportion(rs *appsv1.ReplicaSet, d *appsv1.Deployment, toAdd, added int32) int32 {
	if rs == nil || size(rs) == 0 || toAdd == 0 || toAdd == added {
		return 0
	}
	fraction := replicaSetFraction(rs, d)
	allowed := toAdd - added
	if toAdd > 0 {
		return min(fraction, allowed)
	}
	return max(fraction, allowed)
}

// replicaSetFraction is how much rs grows or shrinks when the Deployment's
// max size (spec.replicas + maxSurge) goes from the one annotated on rs to
// the current one.
func replicaSetFraction(rs *appsv1.ReplicaSet, d *appsv1.Deployment) int32 {
	if *d.Spec.Replicas == 0 {
		return -size(rs)
	}
	deploymentReplicas := *d.Spec.Replicas + maxSurge(d)
	annotated, ok := intAnnotation(rs, MaxReplicasAnnotation)
	if !ok {
		// Without the annotation, the current size is the best guess; the
		// caps in proportion keep the total right.
		annotated = d.Status.Replicas
	}
	if annotated <= 0 {
		return 0 // nothing to scale from; the leftover goes to the largest
	}
	newSize := float64(size(rs)*deploymentReplicas) / float64(annotated)
	return int32(math.Round(newSize)) - size(rs)
}

// findNewReplicaSet is the ReplicaSet whose template is the Deployment's;
// of several (which should not happen) the oldest. It sorts rsList.
func findNewReplicaSet(d *appsv1.Deployment, rsList []*appsv1.ReplicaSet) *appsv1.ReplicaSet {
	sort.Sort(byCreation(rsList))
	for _, rs := range rsList {
		if equalIgnoreHash(&rs.Spec.Template, &d.Spec.Template) {
			return rs
		}
	}
	return nil
}

// findOldReplicaSets is every ReplicaSet of the Deployment but the new one.
func findOldReplicaSets(d *appsv1.Deployment, rsList []*appsv1.ReplicaSet) []*appsv1.ReplicaSet {
	newRS := findNewReplicaSet(d, rsList)
	var old []*appsv1.ReplicaSet
	for _, rs := range rsList {
		if newRS != nil && rs.UID == newRS.UID {
			continue
		}
		old = append(old, rs)
	}
	return old
}

// findActiveOrLatest is the one ReplicaSet with pods, or the newest one
// when none has any; nil when several have pods (a proportional scale).
func findActiveOrLatest(newRS *appsv1.ReplicaSet, oldRSs []*appsv1.ReplicaSet) *appsv1.ReplicaSet {
	if newRS == nil && len(oldRSs) == 0 {
		return nil
	}
	sort.Sort(sort.Reverse(byCreation(oldRSs)))
	active := filterActive(append(oldRSs, newRS))
	switch len(active) {
	case 0:
		if newRS != nil {
			return newRS
		}
		return oldRSs[0]
	case 1:
		return active[0]
	default:
		return nil
	}
}

// filterActive keeps the ReplicaSets that should run pods.
func filterActive(rss []*appsv1.ReplicaSet) []*appsv1.ReplicaSet {
	var out []*appsv1.ReplicaSet
	for _, rs := range rss {
		if rs != nil && size(rs) > 0 {
			out = append(out, rs)
		}
	}
	return out
}

// replicaCount sums spec.replicas.
func replicaCount(rss []*appsv1.ReplicaSet) int32 {
	var n int32
	for _, rs := range rss {
		if rs != nil {
			n += size(rs)
		}
	}
	return n
}

// statusCount sums one status field.
func statusCount(rss []*appsv1.ReplicaSet, field func(*appsv1.ReplicaSetStatus) int32) int32 {
	var n int32
	for _, rs := range rss {
		if rs != nil {
			n += field(&rs.Status)
		}
	}
	return n
}

func actualReplicas(s *appsv1.ReplicaSetStatus) int32    { return s.Replicas }
func readyReplicas(s *appsv1.ReplicaSetStatus) int32     { return s.ReadyReplicas }
func availableReplicas(s *appsv1.ReplicaSetStatus) int32 { return s.AvailableReplicas }

// terminatingReplicas sums status.terminatingReplicas, nil unless every
// ReplicaSet reports it.
func terminatingReplicas(rss []*appsv1.ReplicaSet) *int32 {
	var n int32
	for _, rs := range rss {
		if rs == nil {
			continue
		}
		if rs.Status.TerminatingReplicas == nil {
			return nil
		}
		n += *rs.Status.TerminatingReplicas
	}
	return &n
}

// byCreation orders ReplicaSets oldest first, by name when created in the
// same second.
type byCreation []*appsv1.ReplicaSet

func (o byCreation) Len() int      { return len(o) }
func (o byCreation) Swap(i, j int) { o[i], o[j] = o[j], o[i] }
func (o byCreation) Less(i, j int) bool {
	if o[i].CreationTimestamp.Equal(&o[j].CreationTimestamp) {
		return o[i].Name < o[j].Name
	}
	return o[i].CreationTimestamp.Before(&o[j].CreationTimestamp)
}

// byRevision orders ReplicaSets lowest revision first (the clean-up order).
type byRevision []*appsv1.ReplicaSet

func (o byRevision) Len() int      { return len(o) }
func (o byRevision) Swap(i, j int) { o[i], o[j] = o[j], o[i] }
func (o byRevision) Less(i, j int) bool {
	r1, err1 := revisionOf(o[i])
	r2, err2 := revisionOf(o[j])
	if err1 != nil || err2 != nil || r1 == r2 {
		return byCreation(o).Less(i, j)
	}
	return r1 < r2
}

// bySizeNewer orders the largest first, the newer of equals first: the
// order replicas are added in.
type bySizeNewer []*appsv1.ReplicaSet

func (o bySizeNewer) Len() int      { return len(o) }
func (o bySizeNewer) Swap(i, j int) { o[i], o[j] = o[j], o[i] }
func (o bySizeNewer) Less(i, j int) bool {
	if size(o[i]) == size(o[j]) {
		return byCreation(o).Less(j, i)
	}
	return size(o[i]) > size(o[j])
}

// bySizeOlder orders the largest first, the older of equals first: the
// order replicas are removed in.
type bySizeOlder []*appsv1.ReplicaSet

func (o bySizeOlder) Len() int      { return len(o) }
func (o bySizeOlder) Swap(i, j int) { o[i], o[j] = o[j], o[i] }
func (o bySizeOlder) Less(i, j int) bool {
	if size(o[i]) == size(o[j]) {
		return byCreation(o).Less(i, j)
	}
	return size(o[i]) > size(o[j])
}

package statefulset

// The StatefulSet's ControllerRevisions: named <set>-<hash of the data>
// as upstream's HashControllerRevision, the update revision numbered
// highest, the current one found by name in the status.

import (
	"context"
	"errors"
	"maps"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/skiff-sh/skiff/internal/controller/history"
)

// maxCollisions bounds the retries with a higher collisionCount.
const maxCollisions = 100

// newRevision is the revision of set's current template with number,
// annotated with the set's annotations as upstream does.
func newRevision(set *appsv1.StatefulSet, number int64, collisionCount int32) (*appsv1.ControllerRevision, error) {
	data, err := history.TemplatePatch(&set.Spec.Template)
	if err != nil {
		return nil, err
	}
	return history.New(set, controllerKind, set.Spec.Template.Labels, maps.Clone(set.Annotations), data,
		history.DataHash(data, &collisionCount), number), nil
}

// revisions returns the current revision (status.currentRevision, or
// the update revision for a new set), the update revision (the
// template's: made, reused, or renumbered as the newest after a
// rollback) and the collision count to report (getStatefulSetRevisions).
func (c *Controller) revisions(ctx context.Context, set *appsv1.StatefulSet, revs []*appsv1.ControllerRevision) (cur, upd *appsv1.ControllerRevision, collisions int32, err error) {
	history.Sort(revs)
	if set.Status.CollisionCount != nil {
		collisions = *set.Status.CollisionCount
	}
	next := history.Next(revs)
	upd, err = newRevision(set, next, collisions)
	if err != nil {
		return nil, nil, 0, err
	}
	var equal []*appsv1.ControllerRevision
	for _, r := range revs {
		if history.Equal(r, upd) {
			equal = append(equal, r)
		}
	}
	switch {
	case len(equal) > 0 && equal[len(equal)-1] == revs[len(revs)-1]:
		upd = revs[len(revs)-1] // the template did not change
	case len(equal) > 0:
		if upd, err = c.history.Renumber(ctx, equal[len(equal)-1], next); err != nil {
			return nil, nil, 0, err
		}
	default:
		for range maxCollisions {
			var created *appsv1.ControllerRevision
			created, err = c.history.Create(ctx, upd)
			var collision *history.CollisionError
			if !errors.As(err, &collision) {
				upd = created
				break
			}
			collisions++
			if upd, err = newRevision(set, next, collisions); err != nil {
				break
			}
		}
		if err != nil {
			return nil, nil, 0, err
		}
	}
	for _, r := range revs {
		if r.Name == set.Status.CurrentRevision {
			cur = r
			break
		}
	}
	if cur == nil {
		cur = upd
	}
	return cur, upd, collisions, nil
}

// truncateHistory deletes the oldest revisions that no pod runs and that
// are neither current nor update, beyond spec.revisionHistoryLimit.
func (c *Controller) truncateHistory(ctx context.Context, set *appsv1.StatefulSet, pods []*corev1.Pod, revs []*appsv1.ControllerRevision, cur, upd *appsv1.ControllerRevision) error {
	live := map[string]bool{cur.Name: true, upd.Name: true}
	for _, p := range pods {
		live[revisionOf(p)] = true
	}
	var old []*appsv1.ControllerRevision
	for _, r := range revs {
		if !live[r.Name] {
			old = append(old, r)
		}
	}
	limit := 10
	if set.Spec.RevisionHistoryLimit != nil {
		limit = int(*set.Spec.RevisionHistoryLimit)
	}
	return c.history.Prune(ctx, old, limit, func(*appsv1.ControllerRevision) bool { return false })
}

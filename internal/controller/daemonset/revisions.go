package daemonset

// The DaemonSet's ControllerRevisions: one per template it ran, the
// current one numbered highest.

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiff-sh/skiff/internal/controller/history"
)

// revisions returns the revision of the current template, made or
// renumbered to be the newest, and the others (Kubernetes'
// constructHistory).
func (c *Controller) revisions(ctx context.Context, ds *appsv1.DaemonSet, selector labels.Selector) (cur *appsv1.ControllerRevision, old []*appsv1.ControllerRevision, err error) {
	all, err := c.history.List(ctx, ds, controllerKind, selector, c.canAdopt(ctx, ds))
	if err != nil {
		return nil, nil, err
	}
	patch, err := history.TemplatePatch(&ds.Spec.Template)
	if err != nil {
		return nil, nil, err
	}
	var matching []*appsv1.ControllerRevision
	for _, r := range all {
		if history.Matches(r, patch) {
			matching = append(matching, r)
		} else {
			old = append(old, r)
		}
	}
	switch len(matching) {
	case 0:
		rev := history.New(ds, controllerKind, ds.Spec.Template.Labels, ds.Annotations, patch,
			history.TemplateHash(&ds.Spec.Template, ds.Status.CollisionCount), history.Next(all))
		cur, err = c.history.Create(ctx, rev)
		if err != nil {
			return nil, nil, err
		}
	case 1:
		cur = matching[0]
	default:
		if cur, err = c.dedupe(ctx, ds, matching); err != nil {
			return nil, nil, err
		}
	}
	// Back to an earlier template (a rollback): its revision becomes the newest.
	if next := history.Next(old); cur.Revision < next {
		if cur, err = c.history.Renumber(ctx, cur, next); err != nil {
			return nil, nil, err
		}
	}
	return cur, old, nil
}

// dedupe keeps the highest numbered of several revisions of one template
// and deletes the others, moving their pods to the keeper's hash first.
func (c *Controller) dedupe(ctx context.Context, ds *appsv1.DaemonSet, dups []*appsv1.ControllerRevision) (*appsv1.ControllerRevision, error) {
	keep := dups[0]
	for _, r := range dups[1:] {
		if r.Revision > keep.Revision {
			keep = r
		}
	}
	hash := keep.Labels[history.HashLabel]
	for _, r := range dups {
		if r == keep {
			continue
		}
		pods, err := c.podLister.Pods(ds.Namespace).List(labels.SelectorFromSet(labels.Set{history.HashLabel: r.Labels[history.HashLabel]}))
		if err != nil {
			return nil, err
		}
		for _, p := range pods {
			if !metav1.IsControlledBy(p, ds) {
				continue
			}
			patch := fmt.Appendf(nil, `{"metadata":{"labels":{%q:%q}}}`, history.HashLabel, hash)
			if _, err := c.client.CoreV1().Pods(p.Namespace).Patch(ctx, p.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return nil, err
			}
		}
		if err := c.history.Delete(ctx, r); err != nil {
			return nil, err
		}
	}
	return keep, nil
}

// bumpCollisionCount raises status.collisionCount after a hash collision,
// so that the next sync names the revision differently; cause is
// returned to retry. A stale count is not bumped: the retry reads the
// newer one.
func (c *Controller) bumpCollisionCount(ctx context.Context, ds *appsv1.DaemonSet, cause error) error {
	fresh, err := c.client.AppsV1().DaemonSets(ds.Namespace).Get(ctx, ds.Name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if !equalCount(fresh.Status.CollisionCount, ds.Status.CollisionCount) {
		return cause
	}
	fresh.Status.CollisionCount = new(int32(0))
	if ds.Status.CollisionCount != nil {
		*fresh.Status.CollisionCount = *ds.Status.CollisionCount + 1
	} else {
		*fresh.Status.CollisionCount = 1
	}
	if _, err := c.client.AppsV1().DaemonSets(ds.Namespace).UpdateStatus(ctx, fresh, metav1.UpdateOptions{}); err != nil {
		return err
	}
	c.log.Info("hash collision: bumped collisionCount", "daemonset", dsKey(ds), "collisionCount", *fresh.Status.CollisionCount)
	return cause
}

func equalCount(a, b *int32) bool {
	return a == nil && b == nil || a != nil && b != nil && *a == *b
}

// pruneHistory deletes the oldest revisions no pod runs beyond
// spec.revisionHistoryLimit.
func (c *Controller) pruneHistory(ctx context.Context, ds *appsv1.DaemonSet, old []*appsv1.ControllerRevision, pods []*corev1.Pod) error {
	limit := 10
	if ds.Spec.RevisionHistoryLimit != nil {
		limit = int(*ds.Spec.RevisionHistoryLimit)
	}
	live := map[string]bool{}
	for _, p := range pods {
		if h := p.Labels[history.HashLabel]; h != "" {
			live[h] = true
		}
	}
	return c.history.Prune(ctx, old, limit, func(r *appsv1.ControllerRevision) bool {
		return live[r.Labels[history.HashLabel]]
	})
}

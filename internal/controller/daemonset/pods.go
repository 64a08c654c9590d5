package daemonset

// The pods of a DaemonSet: which are its own, which node each is for,
// and making and deleting them.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiff-sh/skiff/internal/controller/history"
	"github.com/skiff-sh/skiff/internal/controller/slowstart"
)

// claimPods returns the DaemonSet's pods: those it controls that still
// match its selector, and orphans that match, which it adopts. Its pods
// that stopped matching are released, as the ControllerRefManager does.
func (c *Controller) claimPods(ctx context.Context, ds *appsv1.DaemonSet, selector labels.Selector) ([]*corev1.Pod, error) {
	all, err := c.podLister.Pods(ds.Namespace).List(labels.Everything())
	if err != nil {
		return nil, err
	}
	var mine []*corev1.Pod
	var errs []error
	canAdopt := c.canAdopt(ctx, ds)
	for _, p := range all {
		ref := metav1.GetControllerOfNoCopy(p)
		matches := selector.Matches(labels.Set(p.Labels))
		switch {
		case ref != nil && ref.UID == ds.UID && matches:
			mine = append(mine, p)
		case ref != nil && ref.UID == ds.UID:
			if err := c.patchOwner(ctx, p, map[string]any{"$patch": "delete", "uid": ds.UID}); err != nil && !apierrors.IsNotFound(err) {
				errs = append(errs, err)
			}
		case ref == nil && matches && p.DeletionTimestamp == nil:
			if err := canAdopt(); err != nil {
				errs = append(errs, err)
				continue
			}
			err := c.patchOwner(ctx, p, metav1.NewControllerRef(ds, controllerKind))
			switch {
			case err == nil:
				mine = append(mine, p)
			case !apierrors.IsNotFound(err):
				errs = append(errs, err)
			}
		}
	}
	return mine, errors.Join(errs...)
}

// canAdopt checks, once, that the DaemonSet read afresh is still this one
// and not being deleted: the cache may be behind a delete with orphaning,
// whose released pods and revisions must not be taken back.
func (c *Controller) canAdopt(ctx context.Context, ds *appsv1.DaemonSet) func() error {
	return history.OwnerCheck(ds, func() (metav1.Object, error) {
		return c.client.AppsV1().DaemonSets(ds.Namespace).Get(ctx, ds.Name, metav1.GetOptions{})
	})
}

// patchOwner adds or (with a $patch: delete entry) removes a pod's owner
// reference; the uid precondition makes it fail on a pod made again under
// the same name.
func (c *Controller) patchOwner(ctx context.Context, p *corev1.Pod, ref any) error {
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"ownerReferences": []any{ref}, "uid": p.UID}})
	if err != nil {
		return err
	}
	_, err = c.client.CoreV1().Pods(p.Namespace).Patch(ctx, p.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
	return err
}

// groupByNode maps node names to the pods for them, oldest first. Pods
// that finished and are being deleted no longer count.
func groupByNode(pods []*corev1.Pod) map[string][]*corev1.Pod {
	out := map[string][]*corev1.Pod{}
	for _, p := range pods {
		if p.DeletionTimestamp != nil && podTerminal(p) {
			continue
		}
		if n := targetNode(p); n != "" {
			out[n] = append(out[n], p)
		}
	}
	for _, ps := range out {
		sortOldestFirst(ps)
	}
	return out
}

// sortOldestFirst orders a node's pods as Kubernetes'
// podByCreationTimestampAndPhase: bound pods first, then by creation,
// then by name.
func sortOldestFirst(pods []*corev1.Pod) {
	slices.SortStableFunc(pods, func(a, b *corev1.Pod) int {
		if ab, bb := a.Spec.NodeName != "", b.Spec.NodeName != ""; ab != bb {
			if ab {
				return -1
			}
			return 1
		}
		if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			if a.CreationTimestamp.Before(&b.CreationTimestamp) {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	})
}

func podTerminal(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// podAvailable: ready for at least minReadySeconds.
func podAvailable(p *corev1.Pod, minReadySeconds int32, now time.Time) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			return minReadySeconds == 0 || !c.LastTransitionTime.IsZero() &&
				c.LastTransitionTime.Add(time.Duration(minReadySeconds)*time.Second).Before(now)
		}
	}
	return false
}

// templateGeneration is the number of the DaemonSet's template: the
// annotation Kubernetes' API server keeps, or, where the server does not
// keep it, the DaemonSet's generation.
func templateGeneration(ds *appsv1.DaemonSet) int64 {
	if g, err := strconv.ParseInt(ds.Annotations[TemplateGenerationAnnotation], 10, 64); err == nil {
		return g
	}
	return ds.Generation
}

// podUpdated says whether a pod runs the DaemonSet's current template
// (Kubernetes' IsPodUpdated): its template generation or hash says so.
func podUpdated(p *corev1.Pod, ds *appsv1.DaemonSet, hash string) bool {
	return p.Labels[TemplateGenerationLabel] == strconv.FormatInt(templateGeneration(ds), 10) ||
		hash != "" && p.Labels[history.HashLabel] == hash
}

// newPod is the DaemonSet's pod for node: the template with the daemon
// tolerations, the generation and hash labels, and an affinity that only
// node satisfies.
func newPod(ds *appsv1.DaemonSet, node, hash string) *corev1.Pod {
	t := ds.Spec.Template.DeepCopy()
	l := maps.Clone(t.Labels)
	if l == nil {
		l = map[string]string{}
	}
	l[TemplateGenerationLabel] = strconv.FormatInt(templateGeneration(ds), 10)
	l[history.HashLabel] = hash
	withDaemonTolerations(&t.Spec)
	pinToNode(&t.Spec, node)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName:    ds.Name + "-",
			Labels:          l,
			Annotations:     t.Annotations,
			Finalizers:      t.Finalizers,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(ds, controllerKind)},
		},
		Spec: t.Spec,
	}
}

// syncNodes deletes the pods and creates a pod on each of the nodes, at
// most burst of each, waiting through expectations to see them all.
func (c *Controller) syncNodes(ctx context.Context, ds *appsv1.DaemonSet, toDelete []*corev1.Pod, toCreate []string, hash string) error {
	key := dsKey(ds)
	toDelete, toCreate = toDelete[:min(len(toDelete), c.burst)], toCreate[:min(len(toCreate), c.burst)]
	if len(toDelete) == 0 && len(toCreate) == 0 {
		return nil
	}
	keys := make([]string, len(toDelete))
	for i, p := range toDelete {
		keys[i] = podKey(p)
	}
	c.expectations.expect(key, len(toCreate), keys)
	c.queue.AddAfter(key, ExpectationsTimeout) // should the informer never report them
	c.log.Debug("syncing nodes", "daemonset", key, "creating", len(toCreate), "deleting", len(toDelete))

	var mu sync.Mutex
	var errs []error
	report := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	tried, err := slowstart.Run(len(toCreate), 1, func(i int) error {
		err := c.createPod(ctx, ds, toCreate[i], hash)
		if err == nil {
			return nil
		}
		c.expectations.creationObserved(key) // never to be seen
		if apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
			return nil
		}
		return err
	})
	if err != nil {
		report(err)
	}
	for range len(toCreate) - tried {
		c.expectations.creationObserved(key) // never tried
	}
	var wg sync.WaitGroup
	for _, p := range toDelete {
		wg.Go(func() {
			if err := c.deletePodOf(ctx, ds, p); err != nil {
				c.expectations.deletionObserved(key, podKey(p))
				if !apierrors.IsNotFound(err) {
					report(err)
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (c *Controller) createPod(ctx context.Context, ds *appsv1.DaemonSet, node, hash string) error {
	created, err := c.client.CoreV1().Pods(ds.Namespace).Create(ctx, newPod(ds, node, hash), metav1.CreateOptions{})
	if err != nil {
		if !apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
			c.recorder.Eventf(ds, corev1.EventTypeWarning, ReasonFailedCreate, "Error creating: %v", err)
		}
		return err
	}
	c.recorder.Eventf(ds, corev1.EventTypeNormal, ReasonSuccessfulCreate, "Created pod: %v", created.Name)
	return nil
}

func (c *Controller) deletePodOf(ctx context.Context, ds *appsv1.DaemonSet, pod *corev1.Pod) error {
	err := c.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &pod.UID}})
	if apierrors.IsNotFound(err) {
		return err
	}
	if err != nil {
		c.recorder.Eventf(ds, corev1.EventTypeWarning, ReasonFailedDelete, "Error deleting: %v", err)
		return fmt.Errorf("unable to delete pods: %w", err)
	}
	c.recorder.Eventf(ds, corev1.EventTypeNormal, ReasonSuccessfulDelete, "Deleted pod: %v", pod.Name)
	return nil
}

package job

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
)

func isTerminal(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}

// activePods are the pods still running or about to: not finished and not
// being deleted.
func activePods(pods []*corev1.Pod) []*corev1.Pod {
	var out []*corev1.Pod
	for _, p := range pods {
		if !isTerminal(p) && p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out
}

// terminatingPods are the pods being deleted that have not finished.
func terminatingPods(pods []*corev1.Pod) []*corev1.Pod {
	var out []*corev1.Pod
	for _, p := range pods {
		if !isTerminal(p) && p.DeletionTimestamp != nil {
			out = append(out, p)
		}
	}
	return out
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func podReadyTime(p *corev1.Pod) *metav1.Time {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			return &c.LastTransitionTime
		}
	}
	return nil
}

func countReady(pods []*corev1.Pod) int32 {
	var n int32
	for _, p := range pods {
		if podReady(p) {
			n++
		}
	}
	return n
}

func hasTrackingFinalizer(p *corev1.Pod) bool {
	return slices.Contains(p.Finalizers, batchv1.JobTrackingFinalizer)
}

// onlyReplaceFailedPods: a Job with podReplacementPolicy Failed, or with a
// pod failure policy, replaces a pod only once it has failed, not while it
// is being deleted.
func onlyReplaceFailedPods(job *batchv1.Job) bool {
	return job.Spec.PodReplacementPolicy != nil && *job.Spec.PodReplacementPolicy == batchv1.Failed ||
		job.Spec.PodFailurePolicy != nil
}

// isPodFailed: a pod that failed, or (unless only failed pods are replaced)
// one deleted before it succeeded, which may never reach Failed.
func isPodFailed(p *corev1.Pod, job *batchv1.Job) bool {
	if p.Status.Phase == corev1.PodFailed {
		return true
	}
	if onlyReplaceFailedPods(job) {
		return false
	}
	return p.DeletionTimestamp != nil && p.Status.Phase != corev1.PodSucceeded
}

// comparePodsForRemoval orders pods the way kube-controller-manager picks
// which to delete first: unscheduled before scheduled, pending before
// running, not ready before ready, ready for less time before longer, more
// restarts before fewer, newer before older.
func comparePodsForRemoval(a, b *corev1.Pod) int {
	less := func(x, y *corev1.Pod) bool {
		if x.Spec.NodeName != y.Spec.NodeName && (x.Spec.NodeName == "" || y.Spec.NodeName == "") {
			return x.Spec.NodeName == ""
		}
		rank := map[corev1.PodPhase]int{corev1.PodPending: 0, corev1.PodUnknown: 1, corev1.PodRunning: 2}
		if rank[x.Status.Phase] != rank[y.Status.Phase] {
			return rank[x.Status.Phase] < rank[y.Status.Phase]
		}
		if podReady(x) != podReady(y) {
			return !podReady(x)
		}
		if podReady(x) && podReady(y) {
			if tx, ty := podReadyTime(x), podReadyTime(y); !tx.Equal(ty) {
				return afterOrZero(tx, ty)
			}
		}
		if rx, ry := maxRestarts(x), maxRestarts(y); rx != ry {
			return rx > ry
		}
		if !x.CreationTimestamp.Equal(&y.CreationTimestamp) {
			return afterOrZero(&x.CreationTimestamp, &y.CreationTimestamp)
		}
		return false
	}
	switch {
	case less(a, b):
		return -1
	case less(b, a):
		return 1
	}
	return 0
}

// afterOrZero: t1 is later than t2, or t1 is unset and t2 is not.
func afterOrZero(t1, t2 *metav1.Time) bool {
	if t1 == nil || t1.IsZero() || t2 == nil || t2.IsZero() {
		return t1 == nil || t1.IsZero()
	}
	return t1.After(t2.Time)
}

func maxRestarts(p *corev1.Pod) int32 {
	var n int32
	for _, cs := range p.Status.ContainerStatuses {
		n = max(n, cs.RestartCount)
	}
	return n
}

// podsForRemoval returns at least rmAtLeast of the active pods to delete,
// the ones furthest from done first; an Indexed Job also loses the pods of
// repeated or invalid indexes.
func podsForRemoval(job *batchv1.Job, active []*corev1.Pod, rmAtLeast int) []*corev1.Pod {
	var rm []*corev1.Pod
	keep := slices.Clone(active)
	if isIndexed(job) {
		rm, keep = duplicateIndexPods(keep, int(*job.Spec.Completions))
	}
	if len(rm) < rmAtLeast {
		slices.SortStableFunc(keep, comparePodsForRemoval)
		rm = append(rm, keep[:rmAtLeast-len(rm)]...)
	}
	return rm
}

// podFromTemplate is the pod a Job's template makes: its labels,
// annotations and finalizers, the Job as controller, and generateName
// <job>- unless given.
func podFromTemplate(job *batchv1.Job, tmpl *corev1.PodTemplateSpec, generateName string) *corev1.Pod {
	if generateName == "" {
		generateName = job.Name + "-"
		if len(apimachineryvalidation.NameIsDNSSubdomain(generateName, true)) != 0 {
			generateName = job.Name
		}
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:       job.Namespace,
			GenerateName:    generateName,
			Labels:          maps.Clone(tmpl.Labels),
			Annotations:     maps.Clone(tmpl.Annotations),
			Finalizers:      slices.Clone(tmpl.Finalizers),
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(job, controllerKind)},
		},
		Spec: *tmpl.Spec.DeepCopy(),
	}
}

// createPod creates a pod of the Job and records the event.
func (c *Controller) createPod(ctx context.Context, job *batchv1.Job, pod *corev1.Pod) error {
	if len(pod.Labels) == 0 {
		return fmt.Errorf("unable to create pods, no labels")
	}
	created, err := c.client.CoreV1().Pods(job.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		if !apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
			c.recorder.Eventf(job, corev1.EventTypeWarning, "FailedCreate", "Error creating: %v", err)
		}
		return err
	}
	c.log.Debug("created pod", "job", job.Namespace+"/"+job.Name, "pod", created.Name)
	c.recorder.Eventf(job, corev1.EventTypeNormal, "SuccessfulCreate", "Created pod: %v", created.Name)
	return nil
}

// deletePod deletes a pod of the Job and records the event. A pod already
// gone is reported as NotFound, without an event.
func (c *Controller) deletePod(ctx context.Context, job *batchv1.Job, pod *corev1.Pod) error {
	err := c.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return err
	}
	if err != nil {
		c.recorder.Eventf(job, corev1.EventTypeWarning, "FailedDelete", "Error deleting: %v", err)
		return err
	}
	c.recorder.Eventf(job, corev1.EventTypeNormal, "SuccessfulDelete", "Deleted pod: %v", pod.Name)
	return nil
}

// removeFinalizerPatch is a strategic merge patch that takes the tracking
// finalizer out of the pod's list, leaving any other finalizer alone.
func removeFinalizerPatch(p *corev1.Pod) []byte {
	if !hasTrackingFinalizer(p) {
		return nil
	}
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{
		"$deleteFromPrimitiveList/finalizers": []string{batchv1.JobTrackingFinalizer},
	}})
	return patch
}

func (c *Controller) removeFinalizer(ctx context.Context, p *corev1.Pod) error {
	patch := removeFinalizerPatch(p)
	if patch == nil {
		return nil
	}
	_, err := c.client.CoreV1().Pods(p.Namespace).Patch(ctx, p.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
	return err
}

// podsForJob returns the pods the Job controls, releasing those whose
// labels no longer match its selector and adopting (with the tracking
// finalizer) orphans that match. The pods are the cache's: do not modify.
func (c *Controller) podsForJob(ctx context.Context, job *batchv1.Job) ([]*corev1.Pod, error) {
	selector, err := metav1.LabelSelectorAsSelector(job.Spec.Selector)
	if err != nil {
		return nil, fmt.Errorf("job selector: %w", err)
	}
	// All pods of the namespace: a pod whose labels changed may still be
	// ours and must be released.
	all, err := c.pods.Pods(job.Namespace).List(labels.Everything())
	if err != nil {
		return nil, err
	}
	var out []*corev1.Pod
	rechecked := false
	for _, p := range all {
		ref := metav1.GetControllerOf(p)
		match := selector.Matches(labels.Set(p.Labels))
		switch {
		case ref != nil && ref.UID != job.UID:
			continue
		case ref != nil && match:
			out = append(out, p)
		case ref != nil:
			if job.DeletionTimestamp != nil {
				continue
			}
			if err := c.releasePod(ctx, job, p); err != nil {
				return out, err
			}
		case match && p.DeletionTimestamp == nil && job.DeletionTimestamp == nil:
			// Adopting needs a Job that is not being deleted, read fresh
			// from the API rather than from a cache that may be behind.
			if !rechecked {
				if err := c.recheckJob(ctx, job); err != nil {
					return out, fmt.Errorf("adopt pods: %w", err)
				}
				rechecked = true
			}
			adopted, err := c.adoptPod(ctx, job, p)
			if err != nil {
				return out, err
			}
			if adopted != nil {
				out = append(out, adopted)
			}
		}
	}
	return out, nil
}

func (c *Controller) recheckJob(ctx context.Context, job *batchv1.Job) error {
	fresh, err := c.client.BatchV1().Jobs(job.Namespace).Get(ctx, job.Name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if fresh.UID != job.UID {
		return fmt.Errorf("original Job %s/%s is gone: got uid %s, wanted %s", job.Namespace, job.Name, fresh.UID, job.UID)
	}
	if fresh.DeletionTimestamp != nil {
		return fmt.Errorf("%s/%s has just been deleted at %v", job.Namespace, job.Name, fresh.DeletionTimestamp)
	}
	return nil
}

// adoptPod makes the Job the pod's controller and adds the tracking
// finalizer; the uid in the patch makes it fail if the pod was replaced.
func (c *Controller) adoptPod(ctx context.Context, job *batchv1.Job, p *corev1.Pod) (*corev1.Pod, error) {
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{
		"ownerReferences": []metav1.OwnerReference{*metav1.NewControllerRef(job, controllerKind)},
		"uid":             p.UID,
		"finalizers":      []string{batchv1.JobTrackingFinalizer},
	}})
	_, err := c.client.CoreV1().Pods(p.Namespace).Patch(ctx, p.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("adopt pod %s: %w", p.Name, err)
	}
	// Counted from the cache's copy, with the finalizer the patch added.
	adopted := p.DeepCopy()
	adopted.OwnerReferences = append(adopted.OwnerReferences, *metav1.NewControllerRef(job, controllerKind))
	if !hasTrackingFinalizer(adopted) {
		adopted.Finalizers = append(adopted.Finalizers, batchv1.JobTrackingFinalizer)
	}
	return adopted, nil
}

// releasePod drops the Job's owner reference from a pod it no longer selects.
func (c *Controller) releasePod(ctx context.Context, job *batchv1.Job, p *corev1.Pod) error {
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{
		"ownerReferences": []map[string]any{{"$patch": "delete", "uid": job.UID}},
		"uid":             p.UID,
	}})
	_, err := c.client.CoreV1().Pods(p.Namespace).Patch(ctx, p.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
	if apierrors.IsNotFound(err) || apierrors.IsInvalid(err) {
		// Gone, or the uid in the patch no longer matches: nothing to release.
		return nil
	}
	return err
}

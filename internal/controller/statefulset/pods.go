package statefulset

// The pods of a StatefulSet: their names and identity, how they are made
// from a revision, and the states the sync reasons about.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiff-sh/skiff/internal/controller/history"
)

var ordinalName = regexp.MustCompile(`^(.*)-([0-9]+)$`)

// parentAndOrdinal splits a pod name into its set's name and its
// ordinal; the ordinal is -1 for a name of another shape.
func parentAndOrdinal(name string) (string, int) {
	m := ordinalName.FindStringSubmatch(name)
	if m == nil {
		return "", -1
	}
	n, err := strconv.ParseInt(m[2], 10, 32)
	if err != nil {
		return "", -1
	}
	return m[1], int(n)
}

func ordinalOf(pod *corev1.Pod) int {
	_, o := parentAndOrdinal(pod.Name)
	return o
}

// podName is the name of the set's pod with ordinal.
func podName(set *appsv1.StatefulSet, ordinal int) string {
	return fmt.Sprintf("%s-%d", set.Name, ordinal)
}

// isMemberOf says whether the pod's name makes it one of set's.
func isMemberOf(set *appsv1.StatefulSet, pod *corev1.Pod) bool {
	parent, _ := parentAndOrdinal(pod.Name)
	return parent == set.Name
}

// startOrdinal is spec.ordinals.start, 0 when unset.
func startOrdinal(set *appsv1.StatefulSet) int {
	if set.Spec.Ordinals != nil {
		return int(set.Spec.Ordinals.Start)
	}
	return 0
}

func replicaCount(set *appsv1.StatefulSet) int {
	if set.Spec.Replicas == nil {
		return 1
	}
	return int(*set.Spec.Replicas)
}

// inRange says whether the pod's ordinal is one the set wants now.
func inRange(set *appsv1.StatefulSet, pod *corev1.Pod) bool {
	o, start := ordinalOf(pod), startOrdinal(set)
	return o >= start && o < start+replicaCount(set)
}

// revisionOf is the name of the revision a pod was made from.
func revisionOf(pod *corev1.Pod) string { return pod.Labels[history.HashLabel] }

// setIdentity gives pod its stable name and labels (updateIdentity).
func setIdentity(set *appsv1.StatefulSet, pod *corev1.Pod, ordinal int) {
	pod.Name = podName(set, ordinal)
	pod.Namespace = set.Namespace
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	pod.Labels[appsv1.StatefulSetPodNameLabel] = pod.Name
	pod.Labels[appsv1.PodIndexLabel] = strconv.Itoa(ordinal)
}

// identityMatches says whether the pod has the name and labels its
// ordinal gives it.
func identityMatches(set *appsv1.StatefulSet, pod *corev1.Pod) bool {
	parent, o := parentAndOrdinal(pod.Name)
	return o >= 0 && parent == set.Name && pod.Namespace == set.Namespace &&
		pod.Labels[appsv1.StatefulSetPodNameLabel] == pod.Name &&
		pod.Labels[appsv1.PodIndexLabel] == strconv.Itoa(o)
}

// storageMatches says whether the pod mounts each of its claims by name.
func storageMatches(set *appsv1.StatefulSet, pod *corev1.Pod) bool {
	o := ordinalOf(pod)
	if o < 0 {
		return false
	}
	vols := map[string]corev1.Volume{}
	for _, v := range pod.Spec.Volumes {
		vols[v.Name] = v
	}
	for _, t := range set.Spec.VolumeClaimTemplates {
		v, ok := vols[t.Name]
		if !ok || v.PersistentVolumeClaim == nil || v.PersistentVolumeClaim.ClaimName != claimName(set, t.Name, o) {
			return false
		}
	}
	return true
}

// setStorage makes each claim template a volume of the pod, in place of
// a pod volume of the same name.
func setStorage(set *appsv1.StatefulSet, pod *corev1.Pod) {
	o := ordinalOf(pod)
	templated := map[string]bool{}
	var vols []corev1.Volume
	for _, t := range set.Spec.VolumeClaimTemplates {
		templated[t.Name] = true
		vols = append(vols, corev1.Volume{Name: t.Name, VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claimName(set, t.Name, o)},
		}})
	}
	for _, v := range pod.Spec.Volumes {
		if !templated[v.Name] {
			vols = append(vols, v)
		}
	}
	pod.Spec.Volumes = vols
}

// newPod is the set's pod with ordinal made from template, labelled
// with the revision's name (newVersionedStatefulSetPod).
func newPod(set *appsv1.StatefulSet, template *corev1.PodTemplateSpec, revision string, ordinal int) *corev1.Pod {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Labels:          maps.Clone(template.Labels),
			Annotations:     maps.Clone(template.Annotations),
			Finalizers:      append([]string(nil), template.Finalizers...),
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(set, controllerKind)},
		},
		Spec: *template.Spec.DeepCopy(),
	}
	setIdentity(set, pod, ordinal)
	// Fixed at creation only: the pod's DNS name <pod>.<service>.
	pod.Spec.Hostname = pod.Name
	pod.Spec.Subdomain = set.Spec.ServiceName
	setStorage(set, pod)
	pod.Labels[history.HashLabel] = revision
	return pod
}

// templateOf reads the pod template back out of a revision's data, as
// applying its "$patch": "replace" patch to the set would.
func templateOf(rev *appsv1.ControllerRevision) (*corev1.PodTemplateSpec, error) {
	var data struct {
		Spec struct {
			Template corev1.PodTemplateSpec `json:"template"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(rev.Data.Raw, &data); err != nil {
		return nil, fmt.Errorf("revision %s: %w", rev.Name, err)
	}
	return &data.Spec.Template, nil
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func runningAndReady(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning && podReady(p) }

// available: running and ready for at least minReadySeconds.
func available(p *corev1.Pod, minReadySeconds int32, now time.Time) bool {
	if !runningAndReady(p) {
		return false
	}
	if minReadySeconds == 0 {
		return true
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return !c.LastTransitionTime.IsZero() && !c.LastTransitionTime.Add(time.Duration(minReadySeconds)*time.Second).After(now)
		}
	}
	return false
}

// created: the API server has given the pod a phase.
func created(p *corev1.Pod) bool { return p.Status.Phase != "" }

func terminating(p *corev1.Pod) bool { return p.DeletionTimestamp != nil }

func finished(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodFailed || p.Status.Phase == corev1.PodSucceeded
}

// claimPods returns the set's pods after adoption and release, as the
// PodControllerRefManager with the set's name filter: orphans that match
// the selector and are named after the set are adopted, owned pods that
// stopped matching are released.
func (c *Controller) claimPods(ctx context.Context, set *appsv1.StatefulSet, selector labels.Selector) ([]*corev1.Pod, error) {
	all, err := c.podsOf(set.Namespace)
	if err != nil {
		return nil, err
	}
	var out []*corev1.Pod
	var errs []error
	canAdopt := c.canAdopt(ctx, set)
	for _, pod := range all {
		matches := selector.Matches(labels.Set(pod.Labels)) && isMemberOf(set, pod)
		ref := metav1.GetControllerOfNoCopy(pod)
		switch {
		case ref != nil && ref.UID != set.UID:
		case ref != nil && matches:
			out = append(out, pod)
		case ref != nil:
			if set.DeletionTimestamp != nil {
				continue
			}
			patch := fmt.Appendf(nil, `{"metadata":{"ownerReferences":[{"$patch":"delete","uid":%q}],"uid":%q}}`, set.UID, pod.UID)
			if _, err := c.client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil && !apierrors.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("release pod %s: %w", pod.Name, err))
			}
		case matches && set.DeletionTimestamp == nil && pod.DeletionTimestamp == nil:
			adopted, err := c.adopt(ctx, set, pod, canAdopt)
			if apierrors.IsNotFound(err) {
				continue
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("adopt pod %s: %w", pod.Name, err))
				continue
			}
			out = append(out, adopted)
		}
	}
	return out, errors.Join(errs...)
}

// canAdopt checks, once, that the set read afresh is still this one and
// not being deleted: the cache may be behind a delete with orphaning,
// whose released pods and revisions must not be taken back.
func (c *Controller) canAdopt(ctx context.Context, set *appsv1.StatefulSet) func() error {
	return history.OwnerCheck(set, func() (metav1.Object, error) {
		return c.client.AppsV1().StatefulSets(set.Namespace).Get(ctx, set.Name, metav1.GetOptions{})
	})
}

// adopt makes the set the orphan's controller once canAdopt agrees.
func (c *Controller) adopt(ctx context.Context, set *appsv1.StatefulSet, pod *corev1.Pod, canAdopt func() error) (*corev1.Pod, error) {
	if err := canAdopt(); err != nil {
		return nil, err
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"ownerReferences": []metav1.OwnerReference{*metav1.NewControllerRef(set, controllerKind)},
		"uid":             pod.UID,
	}})
	if err != nil {
		return nil, err
	}
	return c.client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
}

package replicaset

import (
	"math"
	"sort"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// PodDeletionCostAnnotation lets a user say which pods of a ReplicaSet go
// first on scale-down: lower cost first (Kubernetes' annotation).
const PodDeletionCostAnnotation = "controller.kubernetes.io/pod-deletion-cost"

// podsToDelete picks diff of pods to delete on scale-down, in the order of
// kube's ActivePodsWithRanks; related are the active pods of every
// ReplicaSet with the same controller (a Deployment's), used to prefer
// pods doubled up on a node.
func podsToDelete(pods, related []*corev1.Pod, diff int, now time.Time) []*corev1.Pod {
	if diff >= len(pods) {
		return pods // all of them: no need to sort
	}
	pods = append([]*corev1.Pod(nil), pods...)
	onNode := map[string]int{}
	for _, p := range related {
		if isPodActive(p) {
			onNode[p.Spec.NodeName]++
		}
	}
	rank := make([]int, len(pods))
	for i, p := range pods {
		rank[i] = onNode[p.Spec.NodeName]
	}
	sort.Sort(deletionOrder{pods: pods, rank: rank, now: now})
	return pods[:diff]
}

// deletionOrder sorts the pods best deleted first. Comparing two pods,
// the first rule that tells them apart decides:
//
//  1. not assigned to a node before assigned;
//  2. Pending before Unknown before Running;
//  3. not ready before ready;
//  4. lower pod-deletion-cost before higher;
//  5. more active related pods on the same node before fewer;
//  6. both ready: ready for less time before more;
//  7. more container restarts before fewer (regular, then sidecar);
//  8. created more recently before older.
//
// Times in 6 and 8 are compared on a log2 scale of their age, the
// ties broken by UID, as kube's LogarithmicScaleDown does: among pods of
// about the same age the victim is random rather than always the newest.
type deletionOrder struct {
	pods []*corev1.Pod
	rank []int
	now  time.Time
}

var phaseOrdinal = map[corev1.PodPhase]int{corev1.PodPending: 0, corev1.PodUnknown: 1, corev1.PodRunning: 2}

func (s deletionOrder) Len() int { return len(s.pods) }

func (s deletionOrder) Swap(i, j int) {
	s.pods[i], s.pods[j] = s.pods[j], s.pods[i]
	s.rank[i], s.rank[j] = s.rank[j], s.rank[i]
}

func (s deletionOrder) Less(i, j int) bool {
	a, b := s.pods[i], s.pods[j]
	if a.Spec.NodeName != b.Spec.NodeName && (a.Spec.NodeName == "" || b.Spec.NodeName == "") {
		return a.Spec.NodeName == ""
	}
	if phaseOrdinal[a.Status.Phase] != phaseOrdinal[b.Status.Phase] {
		return phaseOrdinal[a.Status.Phase] < phaseOrdinal[b.Status.Phase]
	}
	aReady, bReady := podReady(a), podReady(b)
	if aReady != bReady {
		return !aReady
	}
	if ca, cb := deletionCost(a), deletionCost(b); ca != cb {
		return ca < cb
	}
	if s.rank[i] != s.rank[j] {
		return s.rank[i] > s.rank[j]
	}
	if aReady && bReady {
		if ta, tb := readySince(a), readySince(b); !ta.Equal(tb) {
			return s.newer(a, b, ta, tb)
		}
	}
	if ra, rb := maxRestarts(a), maxRestarts(b); ra != rb {
		return ra.regular > rb.regular || ra.regular == rb.regular && ra.sidecar > rb.sidecar
	}
	if ta, tb := a.CreationTimestamp.Time, b.CreationTimestamp.Time; !ta.Equal(tb) {
		return s.newer(a, b, ta, tb)
	}
	return false
}

// newer says whether time ta (of pod a) sorts before tb (of pod b): a zero
// time first, then the more recent one, on a log2 scale of age.
func (s deletionOrder) newer(a, b *corev1.Pod, ta, tb time.Time) bool {
	if s.now.IsZero() || ta.IsZero() || tb.IsZero() {
		return afterOrZero(ta, tb)
	}
	if d := logAge(s.now, ta) - logAge(s.now, tb); d != 0 {
		return d < 0
	}
	return a.UID < b.UID
}

// afterOrZero is t1 after t2, a zero time counting as after any other.
func afterOrZero(t1, t2 time.Time) bool {
	if t1.IsZero() || t2.IsZero() {
		return t1.IsZero()
	}
	return t1.After(t2)
}

func logAge(now, t time.Time) int64 {
	if d := now.Sub(t); d > 0 {
		return int64(math.Log2(float64(d)))
	}
	return -1
}

// deletionCost reads the pod-deletion-cost annotation; a missing or bad
// value is 0, as in Kubernetes.
func deletionCost(p *corev1.Pod) int64 {
	v, err := strconv.ParseInt(p.Annotations[PodDeletionCostAnnotation], 10, 32)
	if err != nil {
		return 0
	}
	return v
}

type restarts struct{ regular, sidecar int32 }

// maxRestarts is the most restarts of any container, and of any sidecar
// (an init container that is always restarted).
func maxRestarts(p *corev1.Pod) restarts {
	var r restarts
	for _, c := range p.Status.ContainerStatuses {
		r.regular = max(r.regular, c.RestartCount)
	}
	sidecars := map[string]bool{}
	for _, c := range p.Spec.InitContainers {
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			sidecars[c.Name] = true
		}
	}
	for _, c := range p.Status.InitContainerStatuses {
		if sidecars[c.Name] {
			r.sidecar = max(r.sidecar, c.RestartCount)
		}
	}
	return r
}

func readyCondition(p *corev1.Pod) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == corev1.PodReady {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

func podReady(p *corev1.Pod) bool {
	c := readyCondition(p)
	return c != nil && c.Status == corev1.ConditionTrue
}

// readySince is when the pod became ready, zero if it is not.
func readySince(p *corev1.Pod) time.Time {
	if c := readyCondition(p); c != nil && c.Status == corev1.ConditionTrue {
		return c.LastTransitionTime.Time
	}
	return time.Time{}
}

// podAvailable is kube's IsPodAvailable: ready for at least minReadySeconds.
func podAvailable(p *corev1.Pod, minReadySeconds int32, now time.Time) bool {
	if !podReady(p) {
		return false
	}
	if minReadySeconds == 0 {
		return true
	}
	since := readySince(p)
	return !since.IsZero() && since.Add(time.Duration(minReadySeconds)*time.Second).Before(now)
}

// isPodActive: neither finished nor being deleted, so it counts as a replica.
func isPodActive(p *corev1.Pod) bool {
	return p.DeletionTimestamp == nil && !isPodTerminal(p)
}

func isPodTerminal(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}

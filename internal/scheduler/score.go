package scheduler

import (
	"math"
	"sort"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiff-sh/skiff/internal/nodeaffinity"
)

// Score weights of kube-scheduler's default plugins.
const (
	weightFit            = 1 // NodeResourcesFit, least allocated
	weightBalanced       = 1 // NodeResourcesBalancedAllocation
	weightImage          = 1 // ImageLocality
	weightNodeAffinity   = 2 // NodeAffinity, preferred terms
	weightTaints         = 3 // TaintToleration, PreferNoSchedule taints
	weightSpread         = 2 // PodTopologySpread, ScheduleAnyway and defaults
	weightInterPod       = 2 // InterPodAffinity, preferred terms
	hardPodAffinityScore = 1 // what an existing pod's required affinity adds
)

// pickNode scores the nodes that fit as kube-scheduler's default plugins
// do, each plugin 0–100 times its weight, and returns the best; ties go to
// the first by name (s.mu held).
func (s *Scheduler) pickNode(pod *corev1.Pod, want requests, fit []*corev1.Node, all []*corev1.Node) *corev1.Node {
	sort.Slice(fit, func(i, j int) bool { return fit[i].Name < fit[j].Name })
	images := s.imagesOf(all)
	taints := normalize(fit, func(n *corev1.Node) float64 { return float64(intolerableTaints(pod, n)) }, true)
	spread := s.spreadScores(pod, fit)
	interPod := s.interPodScores(pod, fit)
	best, bestScore := fit[0], -1.0
	for i, n := range fit {
		least, balanced := resourceScores(want, s.alloc[n.Name], s.usage[n.Name])
		score := weightFit*least + weightBalanced*balanced + weightImage*imageScore(pod, n, images) +
			weightNodeAffinity*preferredAffinity(pod, n) + weightTaints*taints[i]
		if spread != nil {
			score += weightSpread * spread[i]
		}
		if interPod != nil {
			score += weightInterPod * interPod[i]
		}
		if score > bestScore {
			best, bestScore = n, score
		}
	}
	return best
}

// resourceScores are least allocated and balanced allocation, 0–100, of
// the node with the pod on it.
func resourceScores(want requests, alloc allocatable, used *requests) (least, balanced float64) {
	if used == nil {
		used = &requests{}
	}
	cpuCap, memCap := float64(alloc.milliCPU), float64(alloc.memory)
	// Pods without requests count as kube-scheduler's defaults (100m, 200Mi).
	cpu := float64(used.milliCPU + max(want.milliCPU, 100))
	mem := float64(used.memory + max(want.memory, 200<<20))
	cpuFrac, memFrac := 1.0, 1.0
	if cpuCap > 0 {
		cpuFrac = min(cpu/cpuCap, 1)
	}
	if memCap > 0 {
		memFrac = min(mem/memCap, 1)
	}
	return ((1-cpuFrac)*100 + (1-memFrac)*100) / 2, (1 - math.Abs(cpuFrac-memFrac)) * 100
}

// normalize scales raw per-node values to 0–100 over the nodes, as
// kube-scheduler's default normalisation does: by the highest, and
// reversed (fewest is best) when reverse.
func normalize(nodes []*corev1.Node, raw func(*corev1.Node) float64, reverse bool) []float64 {
	out := make([]float64, len(nodes))
	top := 0.0
	for i, n := range nodes {
		out[i] = raw(n)
		top = max(top, out[i])
	}
	for i := range out {
		switch {
		case top == 0 && reverse:
			out[i] = 100
		case top == 0:
			out[i] = 0
		case reverse:
			out[i] = 100 - out[i]*100/top
		default:
			out[i] = out[i] * 100 / top
		}
	}
	return out
}

// preferredAffinity sums the weights of the preferred node affinity terms
// the node matches, scaled to 0–100 by their total.
func preferredAffinity(pod *corev1.Pod, node *corev1.Node) float64 {
	aff := pod.Spec.Affinity
	if aff == nil || aff.NodeAffinity == nil {
		return 0
	}
	var sum, total float64
	for _, t := range aff.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution {
		total += float64(t.Weight)
		if nodeaffinity.MatchesTerm(t.Preference, node) {
			sum += float64(t.Weight)
		}
	}
	if total == 0 {
		return 0
	}
	return sum / total * 100
}

// intolerableTaints counts the node's PreferNoSchedule taints the pod
// does not tolerate.
func intolerableTaints(pod *corev1.Pod, node *corev1.Node) int {
	n := 0
	for _, t := range node.Spec.Taints {
		if t.Effect == corev1.TaintEffectPreferNoSchedule && !tolerates(pod, t) {
			n++
		}
	}
	return n
}

// spreadConstraint is one soft spreading rule: ScheduleAnyway constraints
// of the pod, or kube-scheduler's defaults for a controller's pods.
type spreadConstraint struct {
	key     string
	maxSkew int32
	// counts are the matching placed pods by the key's value.
	counts map[string]int
}

// Kube-scheduler's system default spreading, for pods of a controller
// that have no constraints of their own: by node (skew 3), then by zone
// (skew 5), ScheduleAnyway.
var defaultSpread = []corev1.TopologySpreadConstraint{
	{TopologyKey: corev1.LabelHostname, MaxSkew: 3, WhenUnsatisfiable: corev1.ScheduleAnyway},
	{TopologyKey: corev1.LabelTopologyZone, MaxSkew: 5, WhenUnsatisfiable: corev1.ScheduleAnyway},
}

// spreadScores are PodTopologySpread's 0–100 per node of fit, or nil when
// nothing is to be spread. A node scores higher the fewer matching pods
// its domains hold, each constraint weighted by the log of its domains.
// The defaults count the pods of the same controller, whose selector
// picks them (kube-scheduler merges the selectors of the controllers and
// Services that pick the pod).
func (s *Scheduler) spreadScores(pod *corev1.Pod, fit []*corev1.Node) []float64 {
	var constraints []spreadConstraint
	for _, c := range pod.Spec.TopologySpreadConstraints {
		if c.WhenUnsatisfiable != corev1.ScheduleAnyway {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(c.LabelSelector)
		if err != nil {
			continue
		}
		counts := map[string]int{}
		for _, p := range s.placed {
			if p.pod.Namespace == pod.Namespace && p.pod.UID != pod.UID && sel.Matches(labels.Set(p.pod.Labels)) {
				if v, ok := s.nodeLabel(p.node, c.TopologyKey); ok {
					counts[v]++
				}
			}
		}
		constraints = append(constraints, spreadConstraint{c.TopologyKey, c.MaxSkew, counts})
	}
	owner := controllerOf(pod)
	if len(pod.Spec.TopologySpreadConstraints) == 0 && owner != "" {
		for _, c := range defaultSpread {
			counts := map[string]int{}
			for node, n := range s.byController[owner] {
				if v, ok := s.nodeLabel(node, c.TopologyKey); ok {
					counts[v] += n
				}
			}
			constraints = append(constraints, spreadConstraint{c.TopologyKey, c.MaxSkew, counts})
		}
	}
	if len(constraints) == 0 {
		return nil
	}
	// Each constraint weighs by the log of its domains among the nodes.
	weight := make([]float64, len(constraints))
	for j, c := range constraints {
		domains := map[string]bool{}
		for _, n := range fit {
			if v, ok := labelOf(n, c.key); ok {
				domains[v] = true
			}
		}
		weight[j] = math.Log(float64(len(domains) + 2))
	}
	raw := make([]float64, len(fit))
	top, low := 0.0, math.MaxFloat64
	for i, n := range fit {
		for j, c := range constraints {
			if v, ok := labelOf(n, c.key); ok {
				raw[i] += float64(c.counts[v])*weight[j] + float64(c.maxSkew-1)
			}
		}
		top, low = max(top, raw[i]), min(low, raw[i])
	}
	for i := range raw {
		if top == 0 {
			raw[i] = 100
		} else {
			raw[i] = 100 * (top + low - raw[i]) / top
		}
	}
	return raw
}

// nodeLabel is a label of the named node, as the lister has it.
func (s *Scheduler) nodeLabel(node, key string) (string, bool) {
	n, err := s.nodes.Get(node)
	if err != nil {
		if key == corev1.LabelHostname {
			return node, true
		}
		return "", false
	}
	return labelOf(n, key)
}

// labelOf is a label of node; the hostname label defaults to its name.
func labelOf(node *corev1.Node, key string) (string, bool) {
	v, ok := node.Labels[key]
	if !ok && key == corev1.LabelHostname {
		return node.Name, true
	}
	return v, ok
}

// controllerOf is the UID of the pod's controller, if a ReplicaSet,
// StatefulSet or ReplicationController: the owners kube-scheduler's
// default spreading follows.
func controllerOf(pod *corev1.Pod) types.UID {
	if ref := metav1.GetControllerOf(pod); ref != nil {
		switch ref.Kind {
		case "ReplicaSet", "StatefulSet", "ReplicationController":
			return ref.UID
		}
	}
	return ""
}

// hasPodAffinityTerms reports whether the pod has inter-pod terms that
// scoring weighs: its preferred ones, or required affinity (which other
// pods' scores count).
func hasPodAffinityTerms(pod *corev1.Pod) bool {
	a := pod.Spec.Affinity
	return a != nil && (a.PodAffinity != nil && (len(a.PodAffinity.PreferredDuringSchedulingIgnoredDuringExecution) > 0 ||
		len(a.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution) > 0) ||
		a.PodAntiAffinity != nil && len(a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution) > 0)
}

// interPodScores are InterPodAffinity's 0–100 per node of fit, or nil when
// no term applies: the weights of the pod's preferred affinity (plus) and
// anti-affinity (minus) terms for the matching pods in each node's
// domains, and the same for the placed pods' preferred terms that match
// the pod, with their required affinity adding hardPodAffinityScore.
func (s *Scheduler) interPodScores(pod *corev1.Pod, fit []*corev1.Node) []float64 {
	if !hasPodAffinityTerms(pod) && s.podAffinityPods == 0 {
		return nil
	}
	var prefAff, prefAnti []corev1.WeightedPodAffinityTerm
	if a := pod.Spec.Affinity; a != nil {
		if a.PodAffinity != nil {
			prefAff = a.PodAffinity.PreferredDuringSchedulingIgnoredDuringExecution
		}
		if a.PodAntiAffinity != nil {
			prefAnti = a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution
		}
	}
	// weights by topology key, then by its value.
	weights := map[string]map[string]float64{}
	add := func(key, node string, w float64) {
		v, ok := s.nodeLabel(node, key)
		if !ok {
			return
		}
		if weights[key] == nil {
			weights[key] = map[string]float64{}
		}
		weights[key][v] += w
	}
	for _, p := range s.placed {
		other := p.pod
		if other.UID == pod.UID {
			continue
		}
		for _, t := range prefAff {
			if termMatches(t.PodAffinityTerm, pod, other) {
				add(t.PodAffinityTerm.TopologyKey, p.node, float64(t.Weight))
			}
		}
		for _, t := range prefAnti {
			if termMatches(t.PodAffinityTerm, pod, other) {
				add(t.PodAffinityTerm.TopologyKey, p.node, -float64(t.Weight))
			}
		}
		a := other.Spec.Affinity
		if a == nil {
			continue
		}
		if a.PodAffinity != nil {
			for _, t := range a.PodAffinity.PreferredDuringSchedulingIgnoredDuringExecution {
				if termMatches(t.PodAffinityTerm, other, pod) {
					add(t.PodAffinityTerm.TopologyKey, p.node, float64(t.Weight))
				}
			}
			for _, t := range a.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution {
				if termMatches(t, other, pod) {
					add(t.TopologyKey, p.node, hardPodAffinityScore)
				}
			}
		}
		if a.PodAntiAffinity != nil {
			for _, t := range a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution {
				if termMatches(t.PodAffinityTerm, other, pod) {
					add(t.PodAffinityTerm.TopologyKey, p.node, -float64(t.Weight))
				}
			}
		}
	}
	raw := make([]float64, len(fit))
	top, low := math.Inf(-1), math.Inf(1)
	for i, n := range fit {
		for key, byValue := range weights {
			if v, ok := labelOf(n, key); ok {
				raw[i] += byValue[v]
			}
		}
		top, low = max(top, raw[i]), min(low, raw[i])
	}
	for i := range raw {
		if top > low {
			raw[i] = 100 * (raw[i] - low) / (top - low)
		} else {
			raw[i] = 0
		}
	}
	return raw
}

package scheduler

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// domain is one value of a topology key: the nodes with that label value.
type domain struct{ key, value string }

// podTopology is what inter-pod affinity, anti-affinity and topology
// spread need to know of the pods already placed, worked out once per
// pod to schedule (s.mu held): how many pods match each of its terms in
// each domain, and which domains existing pods' anti-affinity closes to it.
type podTopology struct {
	affinity     []map[string]int // per required affinity term: matching pods by domain value
	affinityAny  []bool           // per term: a matching pod exists anywhere
	antiAffinity []map[string]int // per required anti-affinity term
	spread       []map[string]int // per DoNotSchedule constraint
	closed       map[domain]bool  // domains existing pods' anti-affinity closes
}

func hasTopologyRules(pod *corev1.Pod) bool {
	a := pod.Spec.Affinity
	return len(pod.Spec.TopologySpreadConstraints) > 0 ||
		a != nil && (a.PodAffinity != nil && len(a.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution) > 0 ||
			a.PodAntiAffinity != nil && len(a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution) > 0)
}

func requiredAffinity(pod *corev1.Pod) []corev1.PodAffinityTerm {
	if a := pod.Spec.Affinity; a != nil && a.PodAffinity != nil {
		return a.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution
	}
	return nil
}

func requiredAntiAffinity(pod *corev1.Pod) []corev1.PodAffinityTerm {
	if a := pod.Spec.Affinity; a != nil && a.PodAntiAffinity != nil {
		return a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution
	}
	return nil
}

// termMatches reports whether pod (of namespace ns) is one that term of
// owner refers to.
func termMatches(term corev1.PodAffinityTerm, owner, pod *corev1.Pod) bool {
	namespaces := term.Namespaces
	if len(namespaces) == 0 && term.NamespaceSelector == nil {
		namespaces = []string{owner.Namespace}
	}
	if len(namespaces) > 0 && !contains(namespaces, pod.Namespace) {
		return false
	}
	sel, err := metav1.LabelSelectorAsSelector(term.LabelSelector)
	if err != nil || term.LabelSelector == nil {
		return false
	}
	return sel.Matches(labels.Set(pod.Labels))
}

// topology works out podTopology for pod from the placed pods (s.mu held).
func (s *Scheduler) topology(pod *corev1.Pod) *podTopology {
	aff, anti := requiredAffinity(pod), requiredAntiAffinity(pod)
	t := &podTopology{affinity: make([]map[string]int, len(aff)), affinityAny: make([]bool, len(aff)),
		antiAffinity: make([]map[string]int, len(anti)), closed: map[domain]bool{}}
	for i := range aff {
		t.affinity[i] = map[string]int{}
	}
	for i := range anti {
		t.antiAffinity[i] = map[string]int{}
	}
	var spread []corev1.TopologySpreadConstraint
	for _, c := range pod.Spec.TopologySpreadConstraints {
		if c.WhenUnsatisfiable == corev1.DoNotSchedule {
			spread = append(spread, c)
			t.spread = append(t.spread, map[string]int{})
		}
	}
	for _, p := range s.placed {
		other := p.pod
		if other == nil || other.UID == pod.UID {
			continue
		}
		node, err := s.nodes.Get(p.node)
		if err != nil {
			continue
		}
		for i, term := range aff {
			if termMatches(term, pod, other) {
				t.affinityAny[i] = true
				if v, ok := node.Labels[term.TopologyKey]; ok {
					t.affinity[i][v]++
				}
			}
		}
		for i, term := range anti {
			if v, ok := node.Labels[term.TopologyKey]; ok && termMatches(term, pod, other) {
				t.antiAffinity[i][v]++
			}
		}
		for i, c := range spread {
			sel, err := metav1.LabelSelectorAsSelector(c.LabelSelector)
			if v, ok := node.Labels[c.TopologyKey]; ok && err == nil && other.Namespace == pod.Namespace && sel.Matches(labels.Set(other.Labels)) {
				t.spread[i][v]++
			}
		}
		// Existing pods' anti-affinity keeps the new pod out of their domains.
		for _, term := range requiredAntiAffinity(other) {
			if v, ok := node.Labels[term.TopologyKey]; ok && termMatches(term, other, pod) {
				t.closed[domain{term.TopologyKey, v}] = true
			}
		}
	}
	return t
}

// filterTopology returns why the pod cannot go to node by its inter-pod
// rules and spread constraints, in kube-scheduler's words, or "". nodes
// are the candidates, for the spread constraints' domains.
func filterTopology(pod *corev1.Pod, node *corev1.Node, t *podTopology, eligible []*corev1.Node) string {
	// In kube-scheduler's order: PodTopologySpread, then InterPodAffinity
	// (the pod's affinity, its anti-affinity, existing pods' anti-affinity).
	i := 0
	for _, c := range pod.Spec.TopologySpreadConstraints {
		if c.WhenUnsatisfiable != corev1.DoNotSchedule {
			continue
		}
		counts := t.spread[i]
		i++
		v, ok := node.Labels[c.TopologyKey]
		if !ok {
			return "node(s) didn't match pod topology spread constraints (missing required label)"
		}
		// The smallest count over the domains of eligible nodes.
		min := -1
		for _, n := range eligible {
			if dv, ok := n.Labels[c.TopologyKey]; ok && (min < 0 || counts[dv] < min) {
				min = counts[dv]
			}
		}
		if min < 0 {
			min = 0
		}
		if counts[v]+1-min > int(c.MaxSkew) {
			return "node(s) didn't match pod topology spread constraints"
		}
	}
	for i, term := range requiredAffinity(pod) {
		v, ok := node.Labels[term.TopologyKey]
		if !ok {
			return "node(s) didn't match pod affinity rules"
		}
		if t.affinity[i][v] > 0 {
			continue
		}
		// No pod matches anywhere: the first of a group may go where it
		// would itself match its term, as kube-scheduler allows.
		if !t.affinityAny[i] && termMatches(term, pod, pod) {
			continue
		}
		return "node(s) didn't match pod affinity rules"
	}
	for i, term := range requiredAntiAffinity(pod) {
		if v, ok := node.Labels[term.TopologyKey]; ok && t.antiAffinity[i][v] > 0 {
			return "node(s) didn't match pod anti-affinity rules"
		}
	}
	for key, value := range node.Labels {
		if t.closed[domain{key, value}] {
			return "node(s) didn't satisfy existing pods anti-affinity rules"
		}
	}
	return ""
}

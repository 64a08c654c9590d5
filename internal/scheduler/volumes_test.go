package scheduler

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestAllowedTopologiesOfAClassRestrictWhereItProvisions(t *testing.T) {
	zoneA := corev1.TopologySelectorTerm{MatchLabelExpressions: []corev1.TopologySelectorLabelRequirement{
		{Key: "topology.kubernetes.io/zone", Values: []string{"a", "b"}}}}
	node := func(zone string) *corev1.Node {
		return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n", Labels: map[string]string{"topology.kubernetes.io/zone": zone}}}
	}
	for _, tc := range []struct {
		name  string
		terms []corev1.TopologySelectorTerm
		node  *corev1.Node
		want  bool
	}{
		{"no topologies: everywhere", nil, node("z"), true},
		{"a node in an allowed zone", []corev1.TopologySelectorTerm{zoneA}, node("b"), true},
		{"a node elsewhere", []corev1.TopologySelectorTerm{zoneA}, node("z"), false},
		{"an empty term selects nothing", []corev1.TopologySelectorTerm{{}}, node("a"), false},
	} {
		if got := allowedTopology(tc.terms, tc.node); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

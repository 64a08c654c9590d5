package volumematch

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func volume(name, class, size string, modes ...corev1.PersistentVolumeAccessMode) *corev1.PersistentVolume {
	return &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeSpec{StorageClassName: class, AccessModes: modes,
			Capacity: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}},
		Status: corev1.PersistentVolumeStatus{Phase: corev1.VolumeAvailable}}
}

func TestBestPicksTheSmallestVolumeThatFits(t *testing.T) {
	rwo, rox := corev1.ReadWriteOnce, corev1.ReadOnlyMany
	gold := volume("gold", "fast", "8Gi", rwo)
	gold.Labels = map[string]string{"tier": "gold"}
	claimed := volume("claimed", "fast", "2Gi", rwo)
	claimed.Spec.ClaimRef = &corev1.ObjectReference{Namespace: "default", Name: "someone-else", UID: "x"}
	released := volume("released", "fast", "2Gi", rwo)
	released.Status.Phase = corev1.VolumeReleased
	prebound := volume("prebound", "slow", "4Gi", rox)
	prebound.Spec.ClaimRef = &corev1.ObjectReference{Namespace: "default", Name: "mine"}
	onNode := volume("on-node", "fast", "3Gi", rwo)
	onNode.Spec.NodeAffinity = &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
		MatchExpressions: []corev1.NodeSelectorRequirement{{Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{"a"}}}}}}}
	all := []*corev1.PersistentVolume{gold, claimed, released, prebound, onNode,
		volume("small", "fast", "1Gi", rwo), volume("big", "fast", "5Gi", rwo), volume("rox", "fast", "2Gi", rox), volume("other", "slow", "2Gi", rwo)}
	nodeA := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "a", Labels: map[string]string{corev1.LabelHostname: "a"}}}
	nodeB := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "b", Labels: map[string]string{corev1.LabelHostname: "b"}}}
	for _, tc := range []struct {
		name, claim, class, size string
		mode                     corev1.PersistentVolumeAccessMode
		selector                 map[string]string
		node                     *corev1.Node
		want                     string
	}{
		{"smallest that fits", "c", "fast", "1500Mi", rwo, nil, nil, "on-node"},
		{"node affinity", "c", "fast", "1500Mi", rwo, nil, nodeB, "big"},
		{"node admits", "c", "fast", "1500Mi", rwo, nil, nodeA, "on-node"},
		{"access modes", "c", "fast", "1Gi", rox, nil, nil, "rox"},
		{"selector", "c", "fast", "1Gi", rwo, map[string]string{"tier": "gold"}, nil, "gold"},
		{"class", "c", "slow", "1Gi", rwo, nil, nil, "other"},
		{"pre-bound wins", "mine", "fast", "1Gi", rwo, nil, nil, "prebound"},
		{"none fits", "c", "fast", "100Gi", rwo, nil, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			class := tc.class
			pvc := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: tc.claim, UID: "uid"},
				Spec: corev1.PersistentVolumeClaimSpec{StorageClassName: &class, AccessModes: []corev1.PersistentVolumeAccessMode{tc.mode},
					Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(tc.size)}}}}
			if tc.selector != nil {
				pvc.Spec.Selector = &metav1.LabelSelector{MatchLabels: tc.selector}
			}
			got := ""
			if pv := Best(pvc, all, tc.node); pv != nil {
				got = pv.Name
			}
			if got != tc.want {
				t.Errorf("Best = %q, want %q", got, tc.want)
			}
		})
	}
}

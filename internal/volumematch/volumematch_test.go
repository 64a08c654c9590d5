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
	preboundOnA := volume("prebound-on-a", "fast", "4Gi", rwo)
	preboundOnA.Spec.ClaimRef = &corev1.ObjectReference{Namespace: "default", Name: "mine-on-a"}
	preboundOnA.Spec.NodeAffinity = onNode.Spec.NodeAffinity
	all := []*corev1.PersistentVolume{gold, claimed, released, prebound, onNode, preboundOnA,
		volume("wide-both", "wide", "2Gi", rwo, rox), volume("wide-rwo", "wide", "9Gi", rwo),
		volume("small", "fast", "1Gi", rwo), volume("big", "fast", "5Gi", rwo), volume("rox", "fast", "2Gi", rox), volume("other", "slow", "2Gi", rwo)}
	nodeA := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "a", Labels: map[string]string{corev1.LabelHostname: "a"}}}
	nodeB := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "b", Labels: map[string]string{corev1.LabelHostname: "b"}}}
	for _, tc := range []struct {
		name, claim, class, size string
		mode                     corev1.PersistentVolumeAccessMode
		selector                 map[string]string
		node                     *corev1.Node
		delayed                  bool
		want                     string
	}{
		{"smallest that fits", "c", "fast", "1500Mi", rwo, nil, nil, false, "on-node"},
		{"node affinity", "c", "fast", "1500Mi", rwo, nil, nodeB, false, "big"},
		{"node admits", "c", "fast", "1500Mi", rwo, nil, nodeA, false, "on-node"},
		{"access modes", "c", "fast", "1Gi", rox, nil, nil, false, "rox"},
		{"selector", "c", "fast", "1Gi", rwo, map[string]string{"tier": "gold"}, nil, false, "gold"},
		{"class", "c", "slow", "1Gi", rwo, nil, nil, false, "other"},
		{"pre-bound wins", "mine", "fast", "1Gi", rwo, nil, nil, false, "prebound"},
		{"none fits", "c", "fast", "100Gi", rwo, nil, nil, false, ""},
		{"delayed without a node: none", "c", "fast", "1500Mi", rwo, nil, nil, true, ""},
		{"delayed without a node: its pre-bound one", "mine-on-a", "fast", "1Gi", rwo, nil, nil, true, "prebound-on-a"},
		{"delayed on a node: the smallest there", "c", "fast", "1500Mi", rwo, nil, nodeA, true, "on-node"},
		{"pre-bound elsewhere: none, though others fit", "mine-on-a", "fast", "1Gi", rwo, nil, nodeB, true, ""},
		{"fewest access modes before the smallest", "c", "wide", "1Gi", rwo, nil, nil, false, "wide-rwo"},
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
			if pv := Best(pvc, all, tc.node, tc.delayed); pv != nil {
				got = pv.Name
			}
			if got != tc.want {
				t.Errorf("Best = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestClassIsTheBetaAnnotationFirst(t *testing.T) {
	fast := "fast"
	pvc := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{corev1.BetaStorageClassAnnotation: "old"}},
		Spec: corev1.PersistentVolumeClaimSpec{StorageClassName: &fast}}
	pv := &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{corev1.BetaStorageClassAnnotation: ""}},
		Spec: corev1.PersistentVolumeSpec{StorageClassName: "fast"}}
	if ClassOf(pvc) != "old" || VolumeClassOf(pv) != "" {
		t.Errorf("classes = %q, %q; want the annotations' old and empty", ClassOf(pvc), VolumeClassOf(pv))
	}
}

func TestMismatchSaysWhyANamedVolumeCannotServe(t *testing.T) {
	rwo, rox := corev1.ReadWriteOnce, corev1.ReadOnlyMany
	fast := "fast"
	claim := func(size string, mode corev1.PersistentVolumeAccessMode) *corev1.PersistentVolumeClaim {
		return &corev1.PersistentVolumeClaim{Spec: corev1.PersistentVolumeClaimSpec{StorageClassName: &fast, AccessModes: []corev1.PersistentVolumeAccessMode{mode},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}}}}
	}
	block := corev1.PersistentVolumeBlock
	blockVolume := volume("v", "fast", "1Gi", rwo)
	blockVolume.Spec.VolumeMode = &block
	for _, tc := range []struct {
		pv   *corev1.PersistentVolume
		pvc  *corev1.PersistentVolumeClaim
		want string
	}{
		{volume("v", "fast", "1Gi", rwo), claim("1Gi", rwo), ""},
		{volume("v", "fast", "1Gi", rwo), claim("2Gi", rwo), "requested PV is too small"},
		{volume("v", "slow", "1Gi", rwo), claim("1Gi", rwo), "storageClassName does not match"},
		{volume("v", "fast", "1Gi", rwo), claim("1Gi", rox), "incompatible accessMode"},
		{blockVolume, claim("1Gi", rwo), "incompatible volumeMode"},
	} {
		if got := Mismatch(tc.pv, tc.pvc); got != tc.want {
			t.Errorf("Mismatch = %q, want %q", got, tc.want)
		}
	}
}

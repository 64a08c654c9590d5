// Package volumematch says which PersistentVolume a PersistentVolumeClaim
// may bind and which nodes may use a volume: the rules the
// persistentvolume controller binds by and the scheduler filters by.
package volumematch

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
)

// ClassOf is a claim's storage class name ("" for none).
func ClassOf(pvc *corev1.PersistentVolumeClaim) string {
	if pvc.Spec.StorageClassName != nil {
		return *pvc.Spec.StorageClassName
	}
	return pvc.Annotations[corev1.BetaStorageClassAnnotation]
}

// VolumeClassOf is a volume's storage class name ("" for none).
func VolumeClassOf(pv *corev1.PersistentVolume) string {
	if pv.Spec.StorageClassName != "" {
		return pv.Spec.StorageClassName
	}
	return pv.Annotations[corev1.BetaStorageClassAnnotation]
}

// BoundToClaim reports whether pv's claimRef names pvc (an empty UID, a
// volume pre-bound by name, matches any claim of that name).
func BoundToClaim(pv *corev1.PersistentVolume, pvc *corev1.PersistentVolumeClaim) bool {
	ref := pv.Spec.ClaimRef
	if ref == nil || ref.Namespace != pvc.Namespace || ref.Name != pvc.Name {
		return false
	}
	return ref.UID == "" || ref.UID == pvc.UID
}

// Best is the volume that pvc should bind, as the persistentvolume
// controller's findMatchingVolume picks it: a volume pre-bound to the
// claim if it is large enough, else the smallest Available, unclaimed
// volume of the claim's class, volume mode and access modes whose labels
// match the claim's selector and, when node is set, whose node affinity
// admits that node. nil when none fits.
func Best(pvc *corev1.PersistentVolumeClaim, volumes []*corev1.PersistentVolume, node *corev1.Node) *corev1.PersistentVolume {
	want := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
	var selector labels.Selector
	if pvc.Spec.Selector != nil {
		s, err := metav1.LabelSelectorAsSelector(pvc.Spec.Selector)
		if err != nil {
			return nil
		}
		selector = s
	}
	var best *corev1.PersistentVolume
	for _, pv := range volumes {
		size := pv.Spec.Capacity[corev1.ResourceStorage]
		if size.Cmp(want) < 0 || pv.DeletionTimestamp != nil || modeOf(pv.Spec.VolumeMode) != modeOf(pvc.Spec.VolumeMode) {
			continue
		}
		if node != nil && !AdmitsNode(pv, node) {
			continue
		}
		if BoundToClaim(pv, pvc) {
			return pv
		}
		if pv.Spec.ClaimRef != nil || pv.Status.Phase != corev1.VolumeAvailable {
			continue
		}
		if VolumeClassOf(pv) != ClassOf(pvc) || !HasModes(pv.Spec.AccessModes, pvc.Spec.AccessModes) {
			continue
		}
		if selector != nil && !selector.Matches(labels.Set(pv.Labels)) {
			continue
		}
		if best == nil || size.Cmp(best.Spec.Capacity[corev1.ResourceStorage]) < 0 {
			best = pv
		}
	}
	return best
}

func modeOf(m *corev1.PersistentVolumeMode) corev1.PersistentVolumeMode {
	if m == nil {
		return corev1.PersistentVolumeFilesystem
	}
	return *m
}

// HasModes reports whether the volume offers every mode the claim asks for.
func HasModes(have, want []corev1.PersistentVolumeAccessMode) bool {
	for _, w := range want {
		found := false
		for _, h := range have {
			found = found || h == w
		}
		if !found {
			return false
		}
	}
	return true
}

// AdmitsNode reports whether pv's required node affinity lets node use it
// (a volume without one is reachable from every node).
func AdmitsNode(pv *corev1.PersistentVolume, node *corev1.Node) bool {
	if pv.Spec.NodeAffinity == nil || pv.Spec.NodeAffinity.Required == nil {
		return true
	}
	for _, term := range pv.Spec.NodeAffinity.Required.NodeSelectorTerms {
		if termMatches(term, node) {
			return true
		}
	}
	return false
}

func termMatches(term corev1.NodeSelectorTerm, node *corev1.Node) bool {
	if len(term.MatchExpressions) == 0 && len(term.MatchFields) == 0 {
		return false
	}
	for _, e := range term.MatchExpressions {
		sel, err := labels.NewRequirement(e.Key, selectionOp(e.Operator), e.Values)
		if err != nil || !sel.Matches(labels.Set(node.Labels)) {
			return false
		}
	}
	for _, e := range term.MatchFields {
		sel, err := labels.NewRequirement(e.Key, selectionOp(e.Operator), e.Values)
		if e.Key != "metadata.name" || err != nil || !sel.Matches(labels.Set{"metadata.name": node.Name}) {
			return false
		}
	}
	return true
}

// selectionOp maps a node selector operator to the label selector's.
func selectionOp(op corev1.NodeSelectorOperator) selection.Operator {
	switch op {
	case corev1.NodeSelectorOpIn:
		return selection.In
	case corev1.NodeSelectorOpNotIn:
		return selection.NotIn
	case corev1.NodeSelectorOpExists:
		return selection.Exists
	case corev1.NodeSelectorOpDoesNotExist:
		return selection.DoesNotExist
	case corev1.NodeSelectorOpGt:
		return selection.GreaterThan
	case corev1.NodeSelectorOpLt:
		return selection.LessThan
	}
	return selection.Operator(op)
}

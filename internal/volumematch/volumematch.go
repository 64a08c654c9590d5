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

// ClassOf is a claim's storage class name ("" for none): the beta
// annotation first, as upstream's GetPersistentVolumeClaimClass.
func ClassOf(pvc *corev1.PersistentVolumeClaim) string {
	if class, ok := pvc.Annotations[corev1.BetaStorageClassAnnotation]; ok {
		return class
	}
	if pvc.Spec.StorageClassName != nil {
		return *pvc.Spec.StorageClassName
	}
	return ""
}

// VolumeClassOf is a volume's storage class name ("" for none), the beta
// annotation first.
func VolumeClassOf(pv *corev1.PersistentVolume) string {
	if class, ok := pv.Annotations[corev1.BetaStorageClassAnnotation]; ok {
		return class
	}
	return pv.Spec.StorageClassName
}

// Mismatch says why pv cannot serve pvc ("" when it can), with the
// persistentvolume controller's words (checkVolumeSatisfyClaim): for a
// claim that names its volume in spec.volumeName.
func Mismatch(pv *corev1.PersistentVolume, pvc *corev1.PersistentVolumeClaim) string {
	size := pv.Spec.Capacity[corev1.ResourceStorage]
	switch {
	case size.Cmp(pvc.Spec.Resources.Requests[corev1.ResourceStorage]) < 0:
		return "requested PV is too small"
	case VolumeClassOf(pv) != ClassOf(pvc):
		return "storageClassName does not match"
	case modeOf(pv.Spec.VolumeMode) != modeOf(pvc.Spec.VolumeMode):
		return "incompatible volumeMode"
	case !HasModes(pv.Spec.AccessModes, pvc.Spec.AccessModes):
		return "incompatible accessMode"
	}
	return ""
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
// controller's FindMatchingVolume picks it: a volume pre-bound to the
// claim if it is large enough (none at all if its node affinity excludes
// node), else of the Available, unclaimed volumes of the claim's class,
// volume mode and access modes whose labels match the claim's selector
// and, when node is set, whose node affinity admits that node, the one
// with the fewest access modes, then the smallest.
// A delayed claim (WaitForFirstConsumer) with no node yet takes only a
// pre-bound volume. nil when none fits.
func Best(pvc *corev1.PersistentVolumeClaim, volumes []*corev1.PersistentVolume, node *corev1.Node, delayed bool) *corev1.PersistentVolume {
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
		if pv.DeletionTimestamp != nil || modeOf(pv.Spec.VolumeMode) != modeOf(pvc.Spec.VolumeMode) {
			continue
		}
		admitted := node == nil || AdmitsNode(pv, node)
		size := pv.Spec.Capacity[corev1.ResourceStorage]
		if BoundToClaim(pv, pvc) {
			if !admitted {
				return nil // the claim's own volume is not for this node
			}
			if size.Cmp(want) >= 0 {
				return pv
			}
			continue
		}
		if node == nil && delayed {
			continue // the scheduler picks the node first
		}
		if !admitted || size.Cmp(want) < 0 || pv.Spec.ClaimRef != nil || pv.Status.Phase != corev1.VolumeAvailable {
			continue
		}
		if VolumeClassOf(pv) != ClassOf(pvc) || !HasModes(pv.Spec.AccessModes, pvc.Spec.AccessModes) {
			continue
		}
		if selector != nil && !selector.Matches(labels.Set(pv.Labels)) {
			continue
		}
		if best == nil || better(pv, best) {
			best = pv
		}
	}
	return best
}

// better: fewer access modes first (the persistentvolume index tries the
// volumes of the narrowest mode sets first), then the smaller.
func better(pv, than *corev1.PersistentVolume) bool {
	if a, b := len(pv.Spec.AccessModes), len(than.Spec.AccessModes); a != b {
		return a < b
	}
	size := pv.Spec.Capacity[corev1.ResourceStorage]
	return size.Cmp(than.Spec.Capacity[corev1.ResourceStorage]) < 0
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

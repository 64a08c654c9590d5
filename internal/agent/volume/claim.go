package volume

import (
	"context"
	"fmt"
	"os"

	corev1 "k8s.io/api/core/v1"

	"github.com/skiff-sh/skiff/internal/localpath"
	"github.com/skiff-sh/skiff/internal/volumematch"
)

// ClaimSource reads PersistentVolumeClaims, PersistentVolumes and the
// node a volume's node affinity is checked against; the agent implements
// it with client-go.
type ClaimSource interface {
	PersistentVolumeClaim(ctx context.Context, namespace, name string) (*corev1.PersistentVolumeClaim, error)
	PersistentVolume(ctx context.Context, name string) (*corev1.PersistentVolume, error)
	Node(ctx context.Context, name string) (*corev1.Node, error)
}

// setupClaim resolves a persistentVolumeClaim volume to its bound volume's
// path on this node, as the kubelet does before mounting: the claim must
// be bound, and the volume a hostPath (checked and, for DirectoryOrCreate,
// made as for a pod's own hostPath volume) or a local volume, whose path
// must exist. As the kubelet, it refuses to start a pod whose claim is
// being deleted, and a volume whose node affinity
// excludes the pod's node: a local-path volume elsewhere would otherwise
// be an empty new directory here. The container runtime bind-mounts the
// path.
func (m *Manager) setupClaim(ctx context.Context, pod *corev1.Pod, src *corev1.PersistentVolumeClaimVolumeSource, first bool) (string, error) {
	if m.Claims == nil {
		return "", fmt.Errorf("persistentVolumeClaim volumes are not supported here")
	}
	pvc, err := m.Claims.PersistentVolumeClaim(ctx, pod.Namespace, src.ClaimName)
	if err != nil {
		return "", fmt.Errorf("error processing PVC %s/%s: %w", pod.Namespace, src.ClaimName, err)
	}
	if pvc.DeletionTimestamp != nil && first {
		// As the kubelet: storage protection then needs to count only the
		// pods that were scheduled, as upstream's does.
		return "", fmt.Errorf("can't start pod because PVC %s/%s is being deleted", pod.Namespace, src.ClaimName)
	}
	if pvc.Spec.VolumeName == "" || pvc.Status.Phase != corev1.ClaimBound {
		return "", fmt.Errorf("error processing PVC %s/%s: PVC is not bound", pod.Namespace, src.ClaimName)
	}
	pv, err := m.Claims.PersistentVolume(ctx, pvc.Spec.VolumeName)
	if err != nil {
		return "", fmt.Errorf("error processing PVC %s/%s: %w", pod.Namespace, src.ClaimName, err)
	}
	if ref := pv.Spec.ClaimRef; ref == nil || ref.UID != pvc.UID {
		return "", fmt.Errorf("error processing PVC %s/%s: volume %s is not bound to it", pod.Namespace, src.ClaimName, pv.Name)
	}
	if pv.Spec.NodeAffinity != nil {
		node, err := m.Claims.Node(ctx, pod.Spec.NodeName)
		if err != nil {
			return "", fmt.Errorf("volume %s: node affinity check: %w", pv.Name, err)
		}
		if !volumematch.AdmitsNode(pv, node) {
			return "", fmt.Errorf("volume %s: node affinity check failed: no matching NodeSelectorTerms for node %s", pv.Name, node.Name)
		}
	}
	switch s := pv.Spec.PersistentVolumeSource; {
	case localpath.IsLocalPath(pv):
		// A local-path volume's directory is made on its first use, open
		// to any user the pod runs as, as rancher's provisioner makes it.
		_, statErr := os.Stat(s.HostPath.Path)
		path, err := setupHostPath(s.HostPath)
		if err == nil && os.IsNotExist(statErr) {
			err = os.Chmod(path, 0o777)
		}
		return path, err
	case s.HostPath != nil:
		return setupHostPath(s.HostPath)
	case s.Local != nil:
		if _, err := os.Stat(s.Local.Path); err != nil {
			return "", fmt.Errorf("local volume %s: %w", pv.Name, err)
		}
		return s.Local.Path, nil
	}
	if t := setField(&pv.Spec.PersistentVolumeSource); t != "" {
		return "", fmt.Errorf("persistent volume %s: volume type %s is not supported", pv.Name, t)
	}
	return "", fmt.Errorf("persistent volume %s has no source", pv.Name)
}

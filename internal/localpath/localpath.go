// Package localpath is skiff's local-path storage as both of its sides see
// it. The provisioner in the server makes a hostPath volume in a directory
// of the node that first consumes the claim; each node's agent publishes
// that directory on its Node and removes the directories of its volumes
// once they are released with reclaim policy Delete (a Reclaimer).
package localpath

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

const (
	// Provisioner is the name k3s's local-path provisioner goes by.
	Provisioner = "rancher.io/local-path"
	// DefaultClass is the default StorageClass: k3s's local-path.
	DefaultClass = "local-path"
	// NodeDirAnnotation, on a Node, is the absolute directory its agent
	// keeps local-path volumes in (<data-dir>/storage).
	NodeDirAnnotation = "skiff.sh/local-path-dir"
	// AnnProvisionedBy names the provisioner of a volume.
	AnnProvisionedBy = "pv.kubernetes.io/provisioned-by"
)

// IsLocalPath reports whether pv was made by this provisioner.
func IsLocalPath(pv *corev1.PersistentVolume) bool {
	return pv.Annotations[AnnProvisionedBy] == Provisioner && pv.Spec.HostPath != nil
}

// VolumeDir is where the volume named pv, for claim namespace/name, lives
// in dir, as rancher's provisioner names it: <pv>_<namespace>_<claim>.
func VolumeDir(dir, pv, namespace, claim string) string {
	return filepath.Join(dir, pv+"_"+namespace+"_"+claim)
}

// NodeDir is the local-path directory node publishes, or fallback when it
// publishes none (or one that is not a clean absolute path).
func NodeDir(node *corev1.Node, fallback string) string {
	d := node.Annotations[NodeDirAnnotation]
	if d == "" || !filepath.IsAbs(d) || filepath.Clean(d) != d {
		return fallback
	}
	return d
}

// NodeOf is the node a provisioned volume's node affinity names, or "".
func NodeOf(pv *corev1.PersistentVolume) string {
	if pv.Spec.NodeAffinity == nil || pv.Spec.NodeAffinity.Required == nil {
		return ""
	}
	for _, t := range pv.Spec.NodeAffinity.Required.NodeSelectorTerms {
		for _, e := range t.MatchExpressions {
			if e.Key == corev1.LabelHostname && e.Operator == corev1.NodeSelectorOpIn && len(e.Values) == 1 {
				return e.Values[0]
			}
		}
	}
	return ""
}

// Remove deletes pv's directory and everything in it. The directory must
// sit directly in dir and be named for pv, so that a volume edited to
// name another path cannot make the agent delete it.
func Remove(dir string, pv *corev1.PersistentVolume) error {
	if !IsLocalPath(pv) {
		return fmt.Errorf("volume %s is not a local-path volume", pv.Name)
	}
	path := filepath.Clean(pv.Spec.HostPath.Path)
	if filepath.Dir(path) != filepath.Clean(dir) || !strings.HasPrefix(filepath.Base(path), pv.Name+"_") {
		return fmt.Errorf("volume %s: path %s is not a local-path directory of this node (%s)", pv.Name, path, dir)
	}
	if err := os.RemoveAll(path); err != nil {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	return nil
}

package persistentvolume

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Provisioner is the name k3s's local-path provisioner goes by.
const Provisioner = "rancher.io/local-path"

// DefaultClass is the StorageClass made at start: k3s's local-path.
const DefaultClass = "local-path"

// EnsureDefaultClass creates the local-path StorageClass, the cluster's
// default, unless a class of that name exists (an administrator's change
// to it is kept).
func EnsureDefaultClass(ctx context.Context, client kubernetes.Interface) error {
	wait := storagev1.VolumeBindingWaitForFirstConsumer
	reclaim := corev1.PersistentVolumeReclaimDelete
	sc := &storagev1.StorageClass{
		ObjectMeta: metav1.ObjectMeta{Name: DefaultClass,
			Annotations: map[string]string{"storageclass.kubernetes.io/is-default-class": "true"}},
		Provisioner:       Provisioner,
		VolumeBindingMode: &wait,
		ReclaimPolicy:     &reclaim,
	}
	_, err := client.StorageV1().StorageClasses().Create(ctx, sc, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create storage class %s: %w", DefaultClass, err)
	}
	return nil
}

// storageDir is where local-path volumes live on every node.
func (c *Controller) storageDir() string { return filepath.Join(c.cfg.DataDir, "storage") }

// provision makes a local-path volume for pvc on node, pre-bound to the
// claim, as local-path-provisioner does: a hostPath volume of type
// DirectoryOrCreate at <data-dir>/storage/<pv>_<namespace>_<claim> with
// node affinity to that node. The node's agent creates the directory
// when a pod first mounts it; the next sync binds the claim.
func (c *Controller) provision(ctx context.Context, pvc *corev1.PersistentVolumeClaim, class *storagev1.StorageClass, node *corev1.Node) error {
	if node == nil {
		return errors.New("configuration error, no node was specified")
	}
	if pvc.Spec.Selector != nil {
		return errors.New("claim.Spec.Selector is not supported")
	}
	for _, m := range pvc.Spec.AccessModes {
		if m != corev1.ReadWriteOnce && m != corev1.ReadWriteOncePod {
			return fmt.Errorf("only support ReadWriteOnce, ReadWriteOncePod access mode")
		}
	}
	name := "pvc-" + string(pvc.UID)
	hostname := node.Labels[corev1.LabelHostname]
	if hostname == "" {
		hostname = node.Name
	}
	reclaim := corev1.PersistentVolumeReclaimDelete
	if class.ReclaimPolicy != nil {
		reclaim = *class.ReclaimPolicy
	}
	dirOrCreate := corev1.HostPathDirectoryOrCreate
	fs := corev1.PersistentVolumeFilesystem
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{AnnProvisionedBy: Provisioner}},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: pvc.Spec.Resources.Requests[corev1.ResourceStorage]},
			AccessModes:                   pvc.Spec.AccessModes,
			PersistentVolumeReclaimPolicy: reclaim,
			StorageClassName:              class.Name,
			VolumeMode:                    &fs,
			MountOptions:                  class.MountOptions,
			ClaimRef: &corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1",
				Namespace: pvc.Namespace, Name: pvc.Name, UID: pvc.UID, ResourceVersion: pvc.ResourceVersion},
			PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{
				Path: filepath.Join(c.storageDir(), name+"_"+pvc.Namespace+"_"+pvc.Name), Type: &dirOrCreate}},
			NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchExpressions: []corev1.NodeSelectorRequirement{{Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{hostname}}},
			}}}},
		},
	}
	_, err := c.client.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil // made by an earlier sync; binding goes on
	}
	if err != nil {
		return err
	}
	c.recorder.Eventf(pvc, corev1.EventTypeNormal, ReasonProvisioningSucceeded, "Successfully provisioned volume %s", name)
	return nil
}

// removeData removes a local-path volume's directory. Only this node's
// directories can be reached from here; another node's would need its
// agent (local-path-provisioner runs a helper pod there), which skiff
// does not do yet, so that volume fails to delete with a message saying so.
func (c *Controller) removeData(pv *corev1.PersistentVolume) error {
	src := pv.Spec.HostPath
	if src == nil {
		return fmt.Errorf("volume %s is not a hostPath volume", pv.Name)
	}
	dir := filepath.Clean(src.Path)
	if filepath.Dir(dir) != c.storageDir() || !strings.HasPrefix(filepath.Base(dir), pv.Name+"_") {
		return fmt.Errorf("volume %s: path %s is not a local-path directory of this server", pv.Name, dir)
	}
	if node := volumeNode(pv); node != c.cfg.NodeName {
		return fmt.Errorf("volume %s: cannot remove %s on node %s from node %s", pv.Name, dir, node, c.cfg.NodeName)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove %s: %w", dir, err)
	}
	return nil
}

// volumeNode is the node a provisioned volume's affinity names.
func volumeNode(pv *corev1.PersistentVolume) string {
	if pv.Spec.NodeAffinity == nil || pv.Spec.NodeAffinity.Required == nil {
		return ""
	}
	for _, t := range pv.Spec.NodeAffinity.Required.NodeSelectorTerms {
		for _, e := range t.MatchExpressions {
			if e.Key == corev1.LabelHostname && len(e.Values) == 1 {
				return e.Values[0]
			}
		}
	}
	return ""
}

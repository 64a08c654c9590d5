package persistentvolume

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-sh/skiff/internal/localpath"
)

// Provisioner is the name k3s's local-path provisioner goes by.
const Provisioner = localpath.Provisioner

// DefaultClass is the StorageClass made at start: k3s's local-path.
const DefaultClass = localpath.DefaultClass

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

// storageDir is where local-path volumes live on a node that does not
// say (an agent that predates the node annotation): the server's own.
func (c *Controller) storageDir() string { return filepath.Join(c.cfg.DataDir, "storage") }

// provision makes a local-path volume for pvc on node, pre-bound to the
// claim, as local-path-provisioner does: a hostPath volume of type
// DirectoryOrCreate at <data-dir>/storage/<pv>_<namespace>_<claim> with
// node affinity to that node, where <data-dir> is the one the node
// publishes. The node's agent creates the directory when a pod first
// mounts it, and removes it when the volume is reclaimed; the next sync
// binds the claim.
func (c *Controller) provision(ctx context.Context, pvc *corev1.PersistentVolumeClaim, class *storagev1.StorageClass, node *corev1.Node) error {
	if node == nil {
		return errors.New("configuration error, no node was specified")
	}
	if pvc.Spec.Selector != nil {
		return errors.New("claim.Spec.Selector is not supported")
	}
	if pvc.Spec.VolumeMode != nil && *pvc.Spec.VolumeMode == corev1.PersistentVolumeBlock {
		return fmt.Errorf("%s does not support block volume provisioning", Provisioner)
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
				Path: localpath.VolumeDir(localpath.NodeDir(node, c.storageDir()), name, pvc.Namespace, pvc.Name), Type: &dirOrCreate}},
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

// awaitNodeReclaim leaves a released local-path volume to the agent of
// its node, which removes the directory and then the volume. While that
// node is gone, so is the way to its disk: the volume stays Released (the
// node may come back) and a warning says why at each resync.
func (c *Controller) awaitNodeReclaim(pv *corev1.PersistentVolume) error {
	node := localpath.NodeOf(pv)
	if _, err := c.nodes.Get(node); err == nil || !apierrors.IsNotFound(err) {
		return err
	}
	c.recorder.Eventf(pv, corev1.EventTypeWarning, ReasonVolumeFailedDelete,
		"node %q of local-path volume %s is gone: its directory %s is removed once the node is back", node, pv.Name, pv.Spec.HostPath.Path)
	return nil
}

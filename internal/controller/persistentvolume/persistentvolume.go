// Package persistentvolume is kube-controller-manager's persistentvolume
// binder together with the local-path provisioner k3s ships: it binds
// PersistentVolumeClaims to PersistentVolumes, provisions local-path
// volumes for claims of classes that name it, and reclaims the volumes of
// deleted claims.
//
// A claim without spec.volumeName binds the smallest Available volume
// that fits it (class, volume mode, capacity, access modes, selector); a
// volume pre-bound to it (claimRef) or a claim pre-bound to a volume
// (spec.volumeName) binds that one. Binding writes the volume's claimRef
// first, then its phase, then the claim's volumeName and phase, as
// upstream, so that a crash midway is finished by the next sync. A claim
// of a WaitForFirstConsumer class waits until the scheduler names a node
// (annotation volume.kubernetes.io/selected-node). The controller never
// deletes a claim; when one goes its volume becomes Released and its
// reclaim policy applies: Retain keeps it, Delete has the agent of a
// local-path volume's node remove its directory and the volume.
package persistentvolume

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	storagelisters "k8s.io/client-go/listers/storage/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	"github.com/skiff-sh/skiff/internal/controller/workers"
	"github.com/skiff-sh/skiff/internal/localpath"
	"github.com/skiff-sh/skiff/internal/volumematch"
)

// Annotations, as upstream names them.
const (
	AnnBindCompleted      = "pv.kubernetes.io/bind-completed"
	AnnBoundByController  = "pv.kubernetes.io/bound-by-controller"
	AnnProvisionedBy      = localpath.AnnProvisionedBy
	AnnSelectedNode       = "volume.kubernetes.io/selected-node"
	AnnStorageProvisioner = "volume.kubernetes.io/storage-provisioner"
	// AnnBetaStorageProvisioner is the older name, which provisioners
	// built on older libraries read.
	AnnBetaStorageProvisioner = "volume.beta.kubernetes.io/storage-provisioner"
)

// Event reasons, as upstream records them.
const (
	ReasonFailedBinding         = "FailedBinding"
	ReasonWaitForFirstConsumer  = "WaitForFirstConsumer"
	ReasonExternalProvisioning  = "ExternalProvisioning"
	ReasonProvisioningSucceeded = "ProvisioningSucceeded"
	ReasonProvisioningFailed    = "ProvisioningFailed"
	ReasonClaimLost             = "ClaimLost"
	ReasonClaimMisbound         = "ClaimMisbound"
	ReasonVolumeMismatch        = "VolumeMismatch"
	ReasonVolumeFailedDelete    = "VolumeFailedDelete"
	ReasonVolumeDelete          = "VolumeDelete"
)

// resyncPeriod is how often every claim and volume is synced again, as
// kube-controller-manager's --pvclaimbinder-sync-period.
const resyncPeriod = 15 * time.Second

// Config is what the controller needs to know of its host.
type Config struct {
	// DataDir is the server's data directory. Local-path volumes live in
	// the directory their node publishes, or else in DataDir/storage.
	DataDir string
}

// Controller binds claims to volumes and reclaims released volumes.
type Controller struct {
	cfg      Config
	client   kubernetes.Interface
	claims   corelisters.PersistentVolumeClaimLister
	volumes  corelisters.PersistentVolumeLister
	classes  storagelisters.StorageClassLister
	nodes    corelisters.NodeLister
	synced   []cache.InformerSynced
	queue    workqueue.TypedRateLimitingInterface[string]
	recorder record.EventRecorder
	log      *slog.Logger
}

// New makes the controller on factory's informers; start the factory, then Run.
func New(cfg Config, client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder, log *slog.Logger) *Controller {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	pvcs, pvs := factory.Core().V1().PersistentVolumeClaims(), factory.Core().V1().PersistentVolumes()
	scs, nodes := factory.Storage().V1().StorageClasses(), factory.Core().V1().Nodes()
	c := &Controller{cfg: cfg, client: client, recorder: recorder, log: log,
		claims: pvcs.Lister(), volumes: pvs.Lister(), classes: scs.Lister(), nodes: nodes.Lister(),
		synced: []cache.InformerSynced{pvcs.Informer().HasSynced, pvs.Informer().HasSynced, scs.Informer().HasSynced, nodes.Informer().HasSynced},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "persistentvolume"}),
	}
	pvcs.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.claimChanged,
		UpdateFunc: func(_, obj any) { c.claimChanged(obj) },
		DeleteFunc: c.claimDeleted,
	})
	pvs.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.volumeChanged,
		UpdateFunc: func(_, obj any) { c.volumeChanged(obj) },
		DeleteFunc: c.volumeChanged,
	})
	return c
}

// Run syncs claims and volumes until ctx ends. One worker: two claims
// racing for one volume is what a single binder avoids.
func (c *Controller) Run(ctx context.Context) error {
	go func() {
		t := time.NewTicker(resyncPeriod)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				c.resync()
			}
		}
	}()
	workers.Run(ctx, c.queue, c.synced, 1, c.sync, c.log, "sync persistentvolume")
	return nil
}

// Queue keys: "claim/<namespace>/<name>" or "volume/<name>".
const (
	claimPrefix  = "claim/"
	volumePrefix = "volume/"
)

func (c *Controller) resync() {
	if pvcs, err := c.claims.List(labels.Everything()); err == nil {
		for _, pvc := range pvcs {
			c.queue.Add(claimPrefix + pvc.Namespace + "/" + pvc.Name)
		}
	}
	if pvs, err := c.volumes.List(labels.Everything()); err == nil {
		for _, pv := range pvs {
			c.queue.Add(volumePrefix + pv.Name)
		}
	}
}

func (c *Controller) claimChanged(obj any) {
	if pvc, ok := obj.(*corev1.PersistentVolumeClaim); ok {
		c.queue.Add(claimPrefix + pvc.Namespace + "/" + pvc.Name)
	}
}

// claimDeleted wakes the volumes that referred to the claim, which are
// now released.
func (c *Controller) claimDeleted(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	pvc, ok := obj.(*corev1.PersistentVolumeClaim)
	if !ok {
		return
	}
	if pvc.Spec.VolumeName != "" {
		c.queue.Add(volumePrefix + pvc.Spec.VolumeName)
	}
	pvs, _ := c.volumes.List(labels.Everything())
	for _, pv := range pvs {
		if ref := pv.Spec.ClaimRef; ref != nil && ref.Namespace == pvc.Namespace && ref.Name == pvc.Name {
			c.queue.Add(volumePrefix + pv.Name)
		}
	}
}

func (c *Controller) volumeChanged(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	pv, ok := obj.(*corev1.PersistentVolume)
	if !ok {
		return
	}
	c.queue.Add(volumePrefix + pv.Name)
	if ref := pv.Spec.ClaimRef; ref != nil {
		c.queue.Add(claimPrefix + ref.Namespace + "/" + ref.Name)
	}
}

func (c *Controller) sync(ctx context.Context, key string) error {
	if name, ok := strings.CutPrefix(key, volumePrefix); ok {
		return c.syncVolume(ctx, name)
	}
	ns, name, _ := strings.Cut(strings.TrimPrefix(key, claimPrefix), "/")
	return c.syncClaim(ctx, ns, name)
}

// syncClaim binds, or provisions for, one claim.
func (c *Controller) syncClaim(ctx context.Context, ns, name string) error {
	cached, err := c.claims.PersistentVolumeClaims(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil || cached.DeletionTimestamp != nil {
		return err
	}
	pvc := cached.DeepCopy()
	if pvc.Spec.VolumeName == "" {
		return c.syncUnboundClaim(ctx, pvc)
	}
	pv, err := c.volume(ctx, pvc.Spec.VolumeName)
	if apierrors.IsNotFound(err) {
		if pvc.Annotations[AnnBindCompleted] != "" {
			return c.loseClaim(ctx, pvc, ReasonClaimLost, "Bound claim has lost its PersistentVolume. Data on the volume is lost!")
		}
		// Pre-bound to a volume that does not exist (yet): wait quietly.
		return c.setClaimPhase(ctx, pvc, corev1.ClaimPending, nil)
	}
	if err != nil {
		return err
	}
	if volumematch.BoundToClaim(pv, pvc) {
		return c.bind(ctx, pvc, pv.DeepCopy())
	}
	if pv.Spec.ClaimRef == nil {
		// The user named an unclaimed volume: it must fit.
		if why := volumematch.Mismatch(pv, pvc); why != "" {
			c.recorder.Eventf(pvc, corev1.EventTypeWarning, ReasonVolumeMismatch, "Cannot bind to requested volume %q: %s", pv.Name, why)
			return c.setClaimPhase(ctx, pvc, corev1.ClaimPending, nil)
		}
		return c.bind(ctx, pvc, pv.DeepCopy())
	}
	if pvc.Annotations[AnnBindCompleted] != "" {
		return c.loseClaim(ctx, pvc, ReasonClaimMisbound, "Two claims are bound to the same volume, this one is bound incorrectly")
	}
	c.recorder.Eventf(pvc, corev1.EventTypeWarning, ReasonFailedBinding, "volume %q already bound to a different claim.", pv.Name)
	return c.setClaimPhase(ctx, pvc, corev1.ClaimPending, nil)
}

// syncUnboundClaim finds a volume for pvc or has one provisioned.
func (c *Controller) syncUnboundClaim(ctx context.Context, pvc *corev1.PersistentVolumeClaim) error {
	var class *storagev1.StorageClass
	if name := volumematch.ClassOf(pvc); name != "" {
		sc, err := c.classes.Get(name)
		if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		class = sc
	}
	delayed := class != nil && class.VolumeBindingMode != nil && *class.VolumeBindingMode == storagev1.VolumeBindingWaitForFirstConsumer
	var node *corev1.Node
	if name := pvc.Annotations[AnnSelectedNode]; delayed && name != "" {
		n, err := c.nodes.Get(name)
		if err != nil {
			return fmt.Errorf("selected node %s: %w", name, err)
		}
		node = n
	}
	pvs, err := c.volumes.List(labels.Everything())
	if err != nil {
		return err
	}
	// A volume pre-bound to the claim binds at once, even before the
	// scheduler has named a node.
	if pv := volumematch.Best(pvc, pvs, node, delayed); pv != nil {
		return c.bind(ctx, pvc, pv.DeepCopy())
	}
	if delayed && node == nil {
		c.recorder.Event(pvc, corev1.EventTypeNormal, ReasonWaitForFirstConsumer, "waiting for first consumer to be created before binding")
		return c.setClaimPhase(ctx, pvc, corev1.ClaimPending, nil)
	}
	switch {
	case class != nil:
		// As upstream, the claim names its provisioner, which an external
		// one waits for.
		if pvc, err = c.setProvisioner(ctx, pvc, class.Provisioner); err != nil {
			return err
		}
		if class.Provisioner != Provisioner {
			c.recorder.Eventf(pvc, corev1.EventTypeNormal, ReasonExternalProvisioning,
				"Waiting for a volume to be created either by the external provisioner '%s' or manually by the system administrator. If volume creation is delayed, please verify that the provisioner is running and correctly registered.", class.Provisioner)
			break
		}
		if err := c.provision(ctx, pvc, class, node); err != nil {
			c.recorder.Eventf(pvc, corev1.EventTypeWarning, ReasonProvisioningFailed, "failed to provision volume with StorageClass %q: %v", class.Name, err)
			return err
		}
	case volumematch.ClassOf(pvc) != "":
		c.recorder.Eventf(pvc, corev1.EventTypeWarning, ReasonProvisioningFailed, "storageclass.storage.k8s.io %q not found", volumematch.ClassOf(pvc))
	default:
		c.recorder.Event(pvc, corev1.EventTypeNormal, ReasonFailedBinding, "no persistent volumes available for this claim and no storage class is set")
	}
	return c.setClaimPhase(ctx, pvc, corev1.ClaimPending, nil)
}

// setProvisioner writes the annotations that name the claim's provisioner
// (the current and the beta one), unless they are there.
func (c *Controller) setProvisioner(ctx context.Context, pvc *corev1.PersistentVolumeClaim, provisioner string) (*corev1.PersistentVolumeClaim, error) {
	if pvc.Annotations[AnnStorageProvisioner] == provisioner && pvc.Annotations[AnnBetaStorageProvisioner] == provisioner {
		return pvc, nil
	}
	pvc = pvc.DeepCopy()
	setAnnotation(&pvc.ObjectMeta, AnnStorageProvisioner, provisioner)
	setAnnotation(&pvc.ObjectMeta, AnnBetaStorageProvisioner, provisioner)
	updated, err := c.client.CoreV1().PersistentVolumeClaims(pvc.Namespace).Update(ctx, pvc, metav1.UpdateOptions{})
	if err != nil {
		return nil, fmt.Errorf("claim %s/%s provisioner: %w", pvc.Namespace, pvc.Name, err)
	}
	return updated, nil
}

// loseClaim makes a bound claim Lost, with the event only as it becomes so.
func (c *Controller) loseClaim(ctx context.Context, pvc *corev1.PersistentVolumeClaim, reason, msg string) error {
	if pvc.Status.Phase != corev1.ClaimLost {
		c.recorder.Event(pvc, corev1.EventTypeWarning, reason, msg)
	}
	return c.setClaimPhase(ctx, pvc, corev1.ClaimLost, nil)
}

// volume reads a volume from the lister, or from the API when the lister
// has not seen it yet (one just provisioned or bound).
func (c *Controller) volume(ctx context.Context, name string) (*corev1.PersistentVolume, error) {
	pv, err := c.volumes.Get(name)
	if apierrors.IsNotFound(err) {
		return c.client.CoreV1().PersistentVolumes().Get(ctx, name, metav1.GetOptions{})
	}
	return pv, err
}

// bind finishes whatever part of binding pvc and pv is not done yet, in
// upstream's order: volume claimRef, volume phase, claim volumeName and
// annotations, claim phase.
func (c *Controller) bind(ctx context.Context, pvc *corev1.PersistentVolumeClaim, pv *corev1.PersistentVolume) error {
	var err error
	if ref := pv.Spec.ClaimRef; ref == nil || ref.UID != pvc.UID {
		if ref == nil {
			setAnnotation(&pv.ObjectMeta, AnnBoundByController, "yes")
		}
		pv.Spec.ClaimRef = &corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1",
			Namespace: pvc.Namespace, Name: pvc.Name, UID: pvc.UID, ResourceVersion: pvc.ResourceVersion}
		if pv, err = c.client.CoreV1().PersistentVolumes().Update(ctx, pv, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("bind volume %s to claim %s/%s: %w", pv.Name, pvc.Namespace, pvc.Name, err)
		}
	}
	if pv.Status.Phase != corev1.VolumeBound {
		now := metav1.Now()
		pv.Status = corev1.PersistentVolumeStatus{Phase: corev1.VolumeBound, LastPhaseTransitionTime: &now}
		if pv, err = c.client.CoreV1().PersistentVolumes().UpdateStatus(ctx, pv, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("volume %s status: %w", pv.Name, err)
		}
	}
	if pvc.Spec.VolumeName != pv.Name || pvc.Annotations[AnnBindCompleted] == "" {
		if pvc.Spec.VolumeName == "" {
			setAnnotation(&pvc.ObjectMeta, AnnBoundByController, "yes")
		}
		pvc.Spec.VolumeName = pv.Name
		setAnnotation(&pvc.ObjectMeta, AnnBindCompleted, "yes")
		if pvc, err = c.client.CoreV1().PersistentVolumeClaims(pvc.Namespace).Update(ctx, pvc, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("bind claim %s/%s to volume %s: %w", pvc.Namespace, pvc.Name, pv.Name, err)
		}
	}
	return c.setClaimPhase(ctx, pvc, corev1.ClaimBound, pv)
}

// setClaimPhase writes the claim's phase, and for Bound the volume's
// capacity and access modes, when they changed.
func (c *Controller) setClaimPhase(ctx context.Context, pvc *corev1.PersistentVolumeClaim, phase corev1.PersistentVolumeClaimPhase, pv *corev1.PersistentVolume) error {
	st := pvc.Status.DeepCopy()
	st.Phase = phase
	if pv != nil {
		st.AccessModes = pv.Spec.AccessModes
		st.Capacity = corev1.ResourceList{corev1.ResourceStorage: pv.Spec.Capacity[corev1.ResourceStorage]}
	} else {
		// Without a volume (Pending, Lost) the claim has none of its
		// modes or capacity, as upstream's updateClaimStatus.
		st.AccessModes, st.Capacity = nil, nil
	}
	if phase == pvc.Status.Phase && sameStatus(st, &pvc.Status) {
		return nil
	}
	pvc.Status = *st
	_, err := c.client.CoreV1().PersistentVolumeClaims(pvc.Namespace).UpdateStatus(ctx, pvc, metav1.UpdateOptions{})
	if err != nil {
		return fmt.Errorf("claim %s/%s status: %w", pvc.Namespace, pvc.Name, err)
	}
	return nil
}

func sameStatus(a, b *corev1.PersistentVolumeClaimStatus) bool {
	qa, qb := a.Capacity[corev1.ResourceStorage], b.Capacity[corev1.ResourceStorage]
	return qa.Cmp(qb) == 0 && (a.Capacity == nil) == (b.Capacity == nil) &&
		volumematch.HasModes(a.AccessModes, b.AccessModes) && volumematch.HasModes(b.AccessModes, a.AccessModes)
}

func setAnnotation(m *metav1.ObjectMeta, k, v string) {
	if m.Annotations == nil {
		m.Annotations = map[string]string{}
	}
	m.Annotations[k] = v
}

// syncVolume keeps a volume's phase in line with its claim and reclaims
// it once its claim is gone.
func (c *Controller) syncVolume(ctx context.Context, name string) error {
	cached, err := c.volumes.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil || cached.DeletionTimestamp != nil {
		return err
	}
	pv := cached.DeepCopy()
	ref := pv.Spec.ClaimRef
	if ref == nil || ref.UID == "" {
		// Unclaimed, or pre-bound by name to a claim that binds it on its
		// own sync.
		return c.setVolumePhase(ctx, pv, corev1.VolumeAvailable, "")
	}
	pvc, err := c.claims.PersistentVolumeClaims(ref.Namespace).Get(ref.Name)
	if apierrors.IsNotFound(err) {
		// The cache may be behind a claim just made: ask the API.
		pvc, err = c.client.CoreV1().PersistentVolumeClaims(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
	}
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	if err == nil && pvc.UID == ref.UID {
		switch pvc.Spec.VolumeName {
		case "":
			c.queue.Add(claimPrefix + pvc.Namespace + "/" + pvc.Name) // binding in progress
			return nil
		case pv.Name:
			return c.setVolumePhase(ctx, pv, corev1.VolumeBound, "")
		}
		// The claim went to another volume. One provisioned for it is
		// not needed: release and reclaim it, as upstream.
		if pv.Annotations[AnnProvisionedBy] != "" && pv.Spec.PersistentVolumeReclaimPolicy == corev1.PersistentVolumeReclaimDelete {
			return c.release(ctx, pv)
		}
		// Undo our half of the binding; one the user made stays.
		if pv.Annotations[AnnBoundByController] == "" {
			return nil
		}
		pv.Spec.ClaimRef = nil
		delete(pv.Annotations, AnnBoundByController)
		if pv, err = c.client.CoreV1().PersistentVolumes().Update(ctx, pv, metav1.UpdateOptions{}); err != nil {
			return err
		}
		return c.setVolumePhase(ctx, pv, corev1.VolumeAvailable, "")
	}
	// The claim is gone: release and reclaim.
	return c.release(ctx, pv)
}

// release marks a volume whose claim is gone (or bound elsewhere) Released
// and applies its reclaim policy.
func (c *Controller) release(ctx context.Context, pv *corev1.PersistentVolume) error {
	if pv.Status.Phase == corev1.VolumeFailed {
		return nil
	}
	if err := c.setVolumePhase(ctx, pv, corev1.VolumeReleased, ""); err != nil {
		return err
	}
	switch pv.Spec.PersistentVolumeReclaimPolicy {
	case corev1.PersistentVolumeReclaimRetain:
		return nil
	case corev1.PersistentVolumeReclaimDelete:
		return c.deleteVolume(ctx, pv)
	}
	c.recorder.Event(pv, corev1.EventTypeWarning, "VolumeFailedRecycle", "recycling is not supported")
	return c.setVolumePhase(ctx, pv, corev1.VolumeFailed, "recycling is not supported")
}

// deleteVolume deletes a released volume with reclaim policy Delete. A
// local-path volume is its node's to delete (its data is there), one of
// an external provisioner that provisioner's (it watches for Released);
// other volumes have no deleter here.
func (c *Controller) deleteVolume(ctx context.Context, pv *corev1.PersistentVolume) error {
	switch p := pv.Annotations[AnnProvisionedBy]; {
	case localpath.IsLocalPath(pv):
		return c.awaitNodeReclaim(pv)
	case p != "" && !strings.HasPrefix(p, "kubernetes.io/"):
		return nil
	}
	msg := fmt.Sprintf("error getting deleter volume plugin for volume %q: no deletable volume plugin matched", pv.Name)
	c.recorder.Event(pv, corev1.EventTypeWarning, ReasonVolumeFailedDelete, msg)
	return c.setVolumePhase(ctx, pv, corev1.VolumeFailed, msg)
}

// setVolumePhase writes the volume's phase (and message) when it changed.
func (c *Controller) setVolumePhase(ctx context.Context, pv *corev1.PersistentVolume, phase corev1.PersistentVolumePhase, msg string) error {
	if pv.Status.Phase == phase && pv.Status.Message == msg {
		return nil
	}
	now := metav1.Now()
	pv.Status = corev1.PersistentVolumeStatus{Phase: phase, Message: msg, LastPhaseTransitionTime: &now}
	updated, err := c.client.CoreV1().PersistentVolumes().UpdateStatus(ctx, pv, metav1.UpdateOptions{})
	if err != nil {
		return fmt.Errorf("volume %s status: %w", pv.Name, err)
	}
	*pv = *updated
	return nil
}

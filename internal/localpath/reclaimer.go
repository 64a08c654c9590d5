package localpath

import (
	"context"
	"fmt"
	"log/slog"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	"github.com/skiff-sh/skiff/internal/controller/workers"
)

// reasonVolumeFailedDelete is the persistentvolume controller's event
// reason for a volume it could not delete.
const reasonVolumeFailedDelete = "VolumeFailedDelete"

// Reclaimer runs on every node. The persistentvolume controller in the
// server releases a volume whose claim is gone; for a local-path volume of
// this node with reclaim policy Delete, the Reclaimer removes its
// directory and then deletes the PersistentVolume, as rancher's
// provisioner does with a helper pod on the volume's node.
type Reclaimer struct {
	Client kubernetes.Interface
	// NodeName is this node; its hostname label carries the same name.
	NodeName string
	// Dir is this node's local-path directory.
	Dir      string
	Recorder record.EventRecorder
	Log      *slog.Logger

	volumes corelisters.PersistentVolumeLister
	queue   workqueue.TypedRateLimitingInterface[string]
}

// Run watches the volumes and reclaims this node's until ctx ends.
func (r *Reclaimer) Run(ctx context.Context) {
	if r.Log == nil {
		r.Log = slog.New(slog.DiscardHandler)
	}
	factory := informers.NewSharedInformerFactory(r.Client, 0)
	pvs := factory.Core().V1().PersistentVolumes()
	r.volumes = pvs.Lister()
	r.queue = workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "localpath"})
	changed := func(obj any) {
		if pv, ok := obj.(*corev1.PersistentVolume); ok && r.due(pv) {
			r.queue.Add(pv.Name)
		}
	}
	pvs.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    changed,
		UpdateFunc: func(_, obj any) { changed(obj) },
	})
	factory.Start(ctx.Done())
	workers.Run(ctx, r.queue, []cache.InformerSynced{pvs.Informer().HasSynced}, 1, r.sync, r.Log, "reclaim local-path volume")
	factory.Shutdown()
}

// due reports a volume whose data this node is to remove now.
func (r *Reclaimer) due(pv *corev1.PersistentVolume) bool {
	return IsLocalPath(pv) && NodeOf(pv) == r.NodeName && pv.DeletionTimestamp == nil &&
		pv.Status.Phase == corev1.VolumeReleased &&
		pv.Spec.PersistentVolumeReclaimPolicy == corev1.PersistentVolumeReclaimDelete
}

func (r *Reclaimer) sync(ctx context.Context, name string) error {
	pv, err := r.volumes.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil || !r.due(pv) {
		return err
	}
	if err := Remove(r.Dir, pv); err != nil {
		r.event(pv, corev1.EventTypeWarning, reasonVolumeFailedDelete, err.Error())
		return err
	}
	err = r.Client.CoreV1().PersistentVolumes().Delete(ctx, pv.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &pv.UID}})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete volume %s: %w", pv.Name, err)
	}
	r.Log.Info("reclaimed local-path volume", "volume", pv.Name, "path", pv.Spec.HostPath.Path)
	return nil
}

func (r *Reclaimer) event(pv *corev1.PersistentVolume, kind, reason, msg string) {
	if r.Recorder != nil {
		r.Recorder.Event(pv, kind, reason, msg)
	}
}

// Package storageprotection is kube-controller-manager's pvc-protection and
// pv-protection controllers: it removes the protection finalizer (added at
// creation by admission) from a claim being deleted once no pod that may
// still run uses it, and from a volume being deleted once it is not bound,
// so that storage is never deleted under a running pod.
package storageprotection

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/skiff-sh/skiff/internal/controller/workers"
)

// The finalizers, as admission adds them.
const (
	pvcFinalizer = "kubernetes.io/pvc-protection"
	pvFinalizer  = "kubernetes.io/pv-protection"
)

// Controller removes protection finalizers when it is safe.
type Controller struct {
	client kubernetes.Interface
	claims corelisters.PersistentVolumeClaimLister
	pods   corelisters.PodLister
	pvs    corelisters.PersistentVolumeLister
	synced []cache.InformerSynced
	queue  workqueue.TypedRateLimitingInterface[string] // "claim/<ns>/<name>" or "volume/<name>"
	log    *slog.Logger
}

// New watches claims, volumes and pods through factory.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, log *slog.Logger) *Controller {
	claims, pvs, pods := factory.Core().V1().PersistentVolumeClaims(), factory.Core().V1().PersistentVolumes(), factory.Core().V1().Pods()
	c := &Controller{client: client, claims: claims.Lister(), pods: pods.Lister(), pvs: pvs.Lister(), log: log,
		synced: []cache.InformerSynced{claims.Informer().HasSynced, pvs.Informer().HasSynced, pods.Informer().HasSynced},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "storageprotection"})}
	claimChanged := func(obj any) {
		if pvc, ok := obj.(*corev1.PersistentVolumeClaim); ok && pvc.DeletionTimestamp != nil {
			c.queue.Add("claim/" + pvc.Namespace + "/" + pvc.Name)
		}
	}
	claims.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: claimChanged, UpdateFunc: func(_, o any) { claimChanged(o) }})
	volumeChanged := func(obj any) {
		if pv, ok := obj.(*corev1.PersistentVolume); ok && pv.DeletionTimestamp != nil {
			c.queue.Add("volume/" + pv.Name)
		}
	}
	pvs.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: volumeChanged, UpdateFunc: func(_, o any) { volumeChanged(o) }})
	// A pod that ends or goes may free the claims it used.
	podChanged := func(obj any) {
		if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		pod, ok := obj.(*corev1.Pod)
		if !ok {
			return
		}
		for _, v := range pod.Spec.Volumes {
			if v.PersistentVolumeClaim != nil {
				c.queue.Add("claim/" + pod.Namespace + "/" + v.PersistentVolumeClaim.ClaimName)
			}
		}
	}
	pods.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{UpdateFunc: func(_, o any) { podChanged(o) }, DeleteFunc: podChanged})
	return c
}

// Run removes finalizers until ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	workers.Run(ctx, c.queue, c.synced, 1, c.sync, c.log, "storage protection")
	return nil
}

func (c *Controller) sync(ctx context.Context, key string) error {
	kind, rest, _ := strings.Cut(key, "/")
	if kind == "volume" {
		pv, err := c.pvs.Get(rest)
		if apierrors.IsNotFound(err) || err == nil && (pv.DeletionTimestamp == nil || !slices.Contains(pv.Finalizers, pvFinalizer)) {
			return nil
		}
		if err != nil {
			return err
		}
		if pv.Status.Phase == corev1.VolumeBound {
			return nil // its claim still holds it; the binder releases it first
		}
		_, err = c.client.CoreV1().PersistentVolumes().Patch(ctx, pv.Name, types.JSONPatchType, removeFinalizer(pv.Finalizers, pvFinalizer, pv.ResourceVersion), metav1.PatchOptions{})
		return ignoreNotFound(err)
	}
	ns, name, _ := strings.Cut(rest, "/")
	pvc, err := c.claims.PersistentVolumeClaims(ns).Get(name)
	if apierrors.IsNotFound(err) || err == nil && (pvc.DeletionTimestamp == nil || !slices.Contains(pvc.Finalizers, pvcFinalizer)) {
		return nil
	}
	if err != nil {
		return err
	}
	inUse, err := c.inUse(pvc)
	if err != nil || inUse {
		return err
	}
	_, err = c.client.CoreV1().PersistentVolumeClaims(ns).Patch(ctx, name, types.JSONPatchType, removeFinalizer(pvc.Finalizers, pvcFinalizer, pvc.ResourceVersion), metav1.PatchOptions{})
	return ignoreNotFound(err)
}

// inUse reports whether a scheduled pod of the claim's namespace uses
// it, finished or not, as the pvc-protection controller decides: the
// claim goes with the last pod that names it. A pod not yet scheduled
// does not count: the agent will not start it on a claim being deleted.
func (c *Controller) inUse(pvc *corev1.PersistentVolumeClaim) (bool, error) {
	pods, err := c.pods.Pods(pvc.Namespace).List(labels.Everything())
	if err != nil {
		return false, err
	}
	for _, p := range pods {
		if p.Spec.NodeName == "" {
			continue
		}
		for _, v := range p.Spec.Volumes {
			if v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == pvc.Name {
				return true, nil
			}
		}
	}
	return false, nil
}

// removeFinalizer is a JSON patch that drops finalizer from finalizers,
// tested against the resourceVersion they were read at.
func removeFinalizer(finalizers []string, finalizer, resourceVersion string) []byte {
	kept := slices.DeleteFunc(slices.Clone(finalizers), func(f string) bool { return f == finalizer })
	patch, _ := json.Marshal([]map[string]any{
		{"op": "test", "path": "/metadata/resourceVersion", "value": resourceVersion},
		{"op": "replace", "path": "/metadata/finalizers", "value": kept},
	})
	return patch
}

func ignoreNotFound(err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// Package deployment is kube-controller-manager's deployment controller for
// skiff: it rolls a Deployment's pod template out through ReplicaSets.
//
// Each template gets its own ReplicaSet, named <deployment>-<pod-template-hash>
// and selecting its pods by that hash; the controller creates it, scales it
// and the older ones through the API (RollingUpdate within maxSurge and
// maxUnavailable, or Recreate), numbers the rollouts in annotations for
// kubectl rollout history and undo, keeps revisionHistoryLimit old
// ReplicaSets, and reports progress in the Deployment's status. The
// ReplicaSet controller (package replicaset) makes the pods; this one never
// touches them.
//
// Behaviour follows Kubernetes' pkg/controller/deployment; where skiff's API
// server differs, the code says so.
package deployment

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	"github.com/skiff-sh/skiff/internal/controller/workers"
)

const (
	// workers is how many Deployments sync at once (kube-controller-manager's
	// --concurrent-deployment-syncs default). The queue never hands one key
	// to two workers.
	workerCount = 5
	// maxRetries is how often a failing Deployment is retried, with back-off,
	// before it waits for its next change.
	maxRetries = 15
)

// controllerKind is what the ReplicaSets' controller references name.
var controllerKind = appsv1.SchemeGroupVersion.WithKind("Deployment")

// Controller is the deployment controller.
type Controller struct {
	client      kubernetes.Interface
	deployments appslisters.DeploymentLister
	replicaSets appslisters.ReplicaSetLister
	pods        corelisters.PodLister
	synced      []cache.InformerSynced
	queue       workqueue.TypedRateLimitingInterface[string]
	recorder    record.EventRecorder
	log         *slog.Logger
	now         func() time.Time
}

// New makes the controller on factory's informers; start the factory, then Run.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder, log *slog.Logger) *Controller {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	dInf, rsInf, podInf := factory.Apps().V1().Deployments(), factory.Apps().V1().ReplicaSets(), factory.Core().V1().Pods()
	c := &Controller{
		client: client, deployments: dInf.Lister(), replicaSets: rsInf.Lister(), pods: podInf.Lister(),
		synced:   []cache.InformerSynced{dInf.Informer().HasSynced, rsInf.Informer().HasSynced, podInf.Informer().HasSynced},
		recorder: recorder, log: log, now: time.Now,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "deployment"}),
	}
	dInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueueObject,
		UpdateFunc: func(_, cur any) { c.enqueueObject(cur) },
		DeleteFunc: c.enqueueObject,
	})
	rsInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.addReplicaSet,
		UpdateFunc: c.updateReplicaSet,
		DeleteFunc: c.deleteReplicaSet,
	})
	podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{DeleteFunc: c.deletePod})
	return c
}

func key(d *appsv1.Deployment) string { return d.Namespace + "/" + d.Name }

func (c *Controller) enqueueObject(obj any) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	if d, ok := obj.(*appsv1.Deployment); ok {
		c.queue.Add(key(d))
	}
}

// addReplicaSet wakes the Deployment that controls a new ReplicaSet, or,
// for an orphan, every Deployment that could adopt it.
func (c *Controller) addReplicaSet(obj any) {
	rs := obj.(*appsv1.ReplicaSet)
	if rs.DeletionTimestamp != nil {
		c.deleteReplicaSet(rs) // seen for the first time while going away
		return
	}
	if ref := metav1.GetControllerOf(rs); ref != nil {
		if d := c.resolveControllerRef(rs.Namespace, ref); d != nil {
			c.queue.Add(key(d))
		}
		return
	}
	for _, d := range c.deploymentsForReplicaSet(rs) {
		c.queue.Add(key(d))
	}
}

func (c *Controller) updateReplicaSet(old, cur any) {
	oldRS, curRS := old.(*appsv1.ReplicaSet), cur.(*appsv1.ReplicaSet)
	if curRS.ResourceVersion == oldRS.ResourceVersion {
		return // a resync: nothing changed
	}
	curRef, oldRef := metav1.GetControllerOf(curRS), metav1.GetControllerOf(oldRS)
	refChanged := !reflect.DeepEqual(curRef, oldRef)
	if refChanged && oldRef != nil {
		if d := c.resolveControllerRef(oldRS.Namespace, oldRef); d != nil {
			c.queue.Add(key(d))
		}
	}
	if curRef != nil {
		if d := c.resolveControllerRef(curRS.Namespace, curRef); d != nil {
			c.queue.Add(key(d))
		}
		return
	}
	if refChanged || !reflect.DeepEqual(curRS.Labels, oldRS.Labels) {
		for _, d := range c.deploymentsForReplicaSet(curRS) {
			c.queue.Add(key(d))
		}
	}
}

func (c *Controller) deleteReplicaSet(obj any) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	rs, ok := obj.(*appsv1.ReplicaSet)
	if !ok {
		return
	}
	if ref := metav1.GetControllerOf(rs); ref != nil {
		if d := c.resolveControllerRef(rs.Namespace, ref); d != nil {
			c.queue.Add(key(d))
		}
	}
}

// deletePod wakes a Recreate Deployment once the last of its pods is gone:
// that is what its new ReplicaSet waits for.
func (c *Controller) deletePod(obj any) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	d := c.deploymentForPod(pod)
	if d == nil || d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		return
	}
	rsList, err := c.ownedReplicaSets(d)
	if err != nil {
		return
	}
	podMap, err := c.podMap(d, rsList)
	if err != nil {
		return
	}
	for _, pods := range podMap {
		if len(pods) > 0 {
			return
		}
	}
	c.queue.Add(key(d))
}

// deploymentForPod follows a pod's controller reference to its ReplicaSet
// and on to that one's Deployment.
func (c *Controller) deploymentForPod(pod *corev1.Pod) *appsv1.Deployment {
	ref := metav1.GetControllerOf(pod)
	if ref == nil || ref.Kind != "ReplicaSet" {
		return nil
	}
	rs, err := c.replicaSets.ReplicaSets(pod.Namespace).Get(ref.Name)
	if err != nil || rs.UID != ref.UID {
		return nil
	}
	rsRef := metav1.GetControllerOf(rs)
	if rsRef == nil {
		return nil
	}
	return c.resolveControllerRef(rs.Namespace, rsRef)
}

// resolveControllerRef is the Deployment a controller reference names, if
// it is still that one (same UID).
func (c *Controller) resolveControllerRef(namespace string, ref *metav1.OwnerReference) *appsv1.Deployment {
	if ref.Kind != controllerKind.Kind {
		return nil
	}
	d, err := c.deployments.Deployments(namespace).Get(ref.Name)
	if err != nil || d.UID != ref.UID {
		return nil
	}
	return d
}

// deploymentsForReplicaSet lists the Deployments whose selector matches
// an orphan ReplicaSet's labels.
func (c *Controller) deploymentsForReplicaSet(rs *appsv1.ReplicaSet) []*appsv1.Deployment {
	if len(rs.Labels) == 0 {
		return nil
	}
	all, err := c.deployments.Deployments(rs.Namespace).List(labels.Everything())
	if err != nil {
		return nil
	}
	var out []*appsv1.Deployment
	for _, d := range all {
		selector, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil || selector.Empty() || !selector.Matches(labels.Set(rs.Labels)) {
			continue
		}
		out = append(out, d)
	}
	return out
}

// Run syncs Deployments until ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	workers.Run(ctx, c.queue, c.synced, workerCount, c.syncOrDrop, c.log, "sync deployment")
	return nil
}

// syncOrDrop syncs; a Deployment whose namespace is going needs nothing,
// and one that failed maxRetries times is dropped until its next change.
func (c *Controller) syncOrDrop(ctx context.Context, k string) error {
	err := c.syncKey(ctx, k)
	switch {
	case err == nil || apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause):
		return nil
	case c.queue.NumRequeues(k) >= maxRetries:
		c.log.Warn("dropping deployment out of the queue", "deployment", k, "err", err)
		return nil
	}
	return err
}

// syncKey brings one Deployment's ReplicaSets and status in line with its
// spec. The order is Kubernetes': a Deployment being deleted only gets its
// status; a paused one, or one just scaled, is scaled (proportionally,
// mid-rollout) without rolling; otherwise its strategy rolls it.
func (c *Controller) syncKey(ctx context.Context, k string) error {
	namespace, name, err := cache.SplitMetaNamespaceKey(k)
	if err != nil {
		return nil // not a key we made
	}
	cached, err := c.deployments.Deployments(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	d := cached.DeepCopy()
	if d.Spec.Replicas == nil {
		d.Spec.Replicas = new(int32(1)) // the API server's default
	}
	if reflect.DeepEqual(d.Spec.Selector, &metav1.LabelSelector{}) {
		c.recorder.Eventf(d, corev1.EventTypeWarning, "SelectingAll", "This deployment is selecting all pods. A non-empty selector is required.")
		if d.Status.ObservedGeneration < d.Generation {
			d.Status.ObservedGeneration = d.Generation
			return c.updateStatus(ctx, d)
		}
		return nil
	}
	rsList, err := c.claimReplicaSets(ctx, d)
	if err != nil {
		return err
	}
	podMap, err := c.podMap(d, rsList)
	if err != nil {
		return err
	}
	if d.DeletionTimestamp != nil {
		return c.syncStatusOnly(ctx, d, rsList)
	}
	if err := c.checkPausedConditions(ctx, d); err != nil {
		return err
	}
	if d.Spec.Paused {
		return c.sync(ctx, d, rsList)
	}
	scaling, err := c.isScalingEvent(ctx, d, rsList)
	if err != nil {
		return err
	}
	if scaling {
		return c.sync(ctx, d, rsList)
	}
	switch d.Spec.Strategy.Type {
	case appsv1.RecreateDeploymentStrategyType:
		return c.rolloutRecreate(ctx, d, rsList, podMap)
	case appsv1.RollingUpdateDeploymentStrategyType:
		return c.rolloutRolling(ctx, d, rsList)
	}
	return fmt.Errorf("unexpected deployment strategy type: %s", d.Spec.Strategy.Type)
}

// ownedReplicaSets lists, from the cache, the ReplicaSets d selects and
// controls.
func (c *Controller) ownedReplicaSets(d *appsv1.Deployment) ([]*appsv1.ReplicaSet, error) {
	selector, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return nil, err
	}
	all, err := c.replicaSets.ReplicaSets(d.Namespace).List(selector)
	if err != nil {
		return nil, err
	}
	var out []*appsv1.ReplicaSet
	for _, rs := range all {
		if metav1.IsControlledBy(rs, d) {
			out = append(out, rs)
		}
	}
	return out, nil
}

// podMap groups the pods d selects by the ReplicaSet (of rsList) that
// controls them; every ReplicaSet has an entry.
func (c *Controller) podMap(d *appsv1.Deployment, rsList []*appsv1.ReplicaSet) (map[types.UID][]*corev1.Pod, error) {
	selector, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return nil, err
	}
	pods, err := c.pods.Pods(d.Namespace).List(selector)
	if err != nil {
		return nil, err
	}
	out := make(map[types.UID][]*corev1.Pod, len(rsList))
	for _, rs := range rsList {
		out[rs.UID] = []*corev1.Pod{}
	}
	for _, pod := range pods {
		if ref := metav1.GetControllerOf(pod); ref != nil {
			if list, ok := out[ref.UID]; ok {
				out[ref.UID] = append(list, pod)
			}
		}
	}
	return out, nil
}

// updateStatus writes d's status through the status subresource and keeps
// d's resourceVersion current, so that later writes of this sync do not
// conflict with this one.
func (c *Controller) updateStatus(ctx context.Context, d *appsv1.Deployment) error {
	out, err := c.client.AppsV1().Deployments(d.Namespace).UpdateStatus(ctx, d, metav1.UpdateOptions{})
	if err != nil {
		return err
	}
	d.ResourceVersion = out.ResourceVersion
	return nil
}

// errGone is returned when a Deployment changed identity mid-sync.
var errGone = errors.New("deployment is gone")

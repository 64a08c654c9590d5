// Package daemonset is kube-controller-manager's daemonset controller: it
// keeps one pod of each DaemonSet on every node the DaemonSet's template
// fits (node selector, required node affinity, taints against
// tolerations), rolls the pods to a new template (RollingUpdate or
// OnDelete), records each template as a ControllerRevision (package
// history) for kubectl rollout history and undo, and reports what it
// sees in the DaemonSet's status.
//
// The flow is the sample-controller loop. DaemonSet, Pod, Node and
// ControllerRevision events only queue DaemonSet keys. A sync finds the
// current revision (making it if the template is new), then per node
// creates the missing pod or deletes the surplus, then lets the update
// strategy replace old pods, prunes revisions, and writes status through
// the status subresource. Pods are not bound here: each is pinned to its
// node by a required node affinity on metadata.name and placed by the
// scheduler, as current Kubernetes does. Pods of nodes that are gone are
// left to the pod garbage collector, unless never scheduled.
package daemonset

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/flowcontrol"
	"k8s.io/client-go/util/workqueue"

	"github.com/skiff-sh/skiff/internal/controller/history"
	"github.com/skiff-sh/skiff/internal/controller/podevents"
	"github.com/skiff-sh/skiff/internal/controller/workers"
)

const (
	// BurstReplicas is the most pods one sync creates or deletes.
	BurstReplicas = 250
	// workerCount is kube-controller-manager's --concurrent-daemonset-syncs.
	workerCount = 2
	// A node's failed daemon pod is deleted (and so replaced) after a
	// back-off of 1 s doubling to 15 min, as Kubernetes': a pod the node
	// keeps rejecting must not hot-loop.
	failedPodBackoff    = 1 * time.Second
	maxFailedPodBackoff = 15 * time.Minute
	// TemplateGenerationAnnotation numbers the DaemonSet's templates; its
	// pods carry the number as TemplateGenerationLabel.
	TemplateGenerationAnnotation = appsv1.DeprecatedTemplateGeneration
	// TemplateGenerationLabel is extensions/v1beta1's DaemonSetTemplateGenerationKey.
	TemplateGenerationLabel = "pod-template-generation"
)

// Event reasons, as Kubernetes records them on the DaemonSet.
const (
	ReasonSuccessfulCreate   = "SuccessfulCreate"
	ReasonFailedCreate       = "FailedCreate"
	ReasonSuccessfulDelete   = "SuccessfulDelete"
	ReasonFailedDelete       = "FailedDelete"
	ReasonFailedDaemonPod    = "FailedDaemonPod"
	ReasonSucceededDaemonPod = "SucceededDaemonPod"
	ReasonSelectingAll       = "SelectingAll"
)

var controllerKind = appsv1.SchemeGroupVersion.WithKind("DaemonSet")

// Controller is the daemonset controller.
type Controller struct {
	client       kubernetes.Interface
	dsLister     appslisters.DaemonSetLister
	podLister    corelisters.PodLister
	nodeLister   corelisters.NodeLister
	history      *history.History
	revLister    appslisters.ControllerRevisionLister
	synced       []cache.InformerSynced
	queue        workqueue.TypedRateLimitingInterface[string]
	recorder     record.EventRecorder
	expectations *expectations
	failed       *flowcontrol.Backoff
	burst        int
	now          func() time.Time
	log          *slog.Logger
}

// New makes the controller on factory's informers; start the factory, then Run.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder, log *slog.Logger) *Controller {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dss, pods := factory.Apps().V1().DaemonSets(), factory.Core().V1().Pods()
	nodes, revs := factory.Core().V1().Nodes(), factory.Apps().V1().ControllerRevisions()
	c := &Controller{
		client: client, dsLister: dss.Lister(), podLister: pods.Lister(), nodeLister: nodes.Lister(),
		revLister: revs.Lister(),
		history:   &history.History{Client: client.AppsV1(), Lister: revs.Lister()},
		synced: []cache.InformerSynced{dss.Informer().HasSynced, pods.Informer().HasSynced,
			nodes.Informer().HasSynced, revs.Informer().HasSynced},
		recorder: recorder, expectations: newExpectations(time.Now),
		failed: flowcontrol.NewBackOff(failedPodBackoff, maxFailedPodBackoff), burst: BurstReplicas, now: time.Now, log: log,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "daemonset"}),
	}
	dss.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueueDS,
		UpdateFunc: func(_, cur any) { c.enqueueDS(cur) },
		DeleteFunc: c.deleteDS,
	})
	pods.Informer().AddEventHandler(c.podEvents().Handler())
	nodes.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { c.enqueueAll() },
		UpdateFunc: c.updateNode,
		DeleteFunc: func(any) { c.enqueueAll() },
	})
	revs.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.revisionChanged,
		UpdateFunc: func(_, cur any) { c.revisionChanged(cur) },
		DeleteFunc: c.revisionChanged,
	})
	return c
}

// Run syncs DaemonSets until ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	go func() {
		t := time.NewTicker(time.Minute)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				c.failed.GC()
			}
		}
	}()
	workers.Run(ctx, c.queue, c.synced, workerCount, c.sync, c.log, "sync daemonset")
	return nil
}

func keyOf(namespace, name string) string { return namespace + "/" + name }

func dsKey(ds *appsv1.DaemonSet) string { return keyOf(ds.Namespace, ds.Name) }

func podKey(p *corev1.Pod) string { return keyOf(p.Namespace, p.Name) }

// Event handlers: they only map an object to DaemonSet keys.

func (c *Controller) enqueueDS(obj any) {
	if ds, ok := obj.(*appsv1.DaemonSet); ok {
		c.queue.Add(dsKey(ds))
	}
}

func (c *Controller) deleteDS(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	if ds, ok := obj.(*appsv1.DaemonSet); ok {
		c.expectations.forget(dsKey(ds))
		c.queue.Add(dsKey(ds))
	}
}

func (c *Controller) enqueueAll() {
	all, err := c.dsLister.List(labels.Everything())
	if err != nil {
		return
	}
	for _, ds := range all {
		c.queue.Add(dsKey(ds))
	}
}

// updateNode looks again only when something that decides placement
// changed: labels, taints, cordoning, readiness.
func (c *Controller) updateNode(old, cur any) {
	o, ok1 := old.(*corev1.Node)
	n, ok2 := cur.(*corev1.Node)
	if !ok1 || !ok2 {
		return
	}
	if reflect.DeepEqual(o.Labels, n.Labels) && reflect.DeepEqual(o.Spec.Taints, n.Spec.Taints) &&
		o.Spec.Unschedulable == n.Spec.Unschedulable && nodeReady(o) == nodeReady(n) {
		return
	}
	c.enqueueAll()
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// resolve returns the DaemonSet a controller reference names, nil if it
// is of another kind or gone.
func (c *Controller) resolve(namespace string, ref *metav1.OwnerReference) *appsv1.DaemonSet {
	if ref == nil || ref.Kind != controllerKind.Kind {
		return nil
	}
	ds, err := c.dsLister.DaemonSets(namespace).Get(ref.Name)
	if err != nil || ds.UID != ref.UID {
		return nil
	}
	return ds
}

// podEvents routes pod events to the owning DaemonSet, or for an orphan
// the DaemonSets whose selector matches it, and tells the expectations of
// pods seen made or going.
func (c *Controller) podEvents() *podevents.Router[*appsv1.DaemonSet] {
	return &podevents.Router[*appsv1.DaemonSet]{
		Queue:           c.queue,
		Kind:            controllerKind.Kind,
		Get:             func(ns, name string) (*appsv1.DaemonSet, error) { return c.dsLister.DaemonSets(ns).Get(name) },
		Matching:        c.dsLister.GetPodDaemonSets,
		MinReadySeconds: func(ds *appsv1.DaemonSet) int32 { return ds.Spec.MinReadySeconds },
		Created:         c.expectations.creationObserved,
		Deleted:         func(key string, pod *corev1.Pod) { c.expectations.deletionObserved(key, podKey(pod)) },
	}
}

// revisionChanged queues the revision's DaemonSet, or for an orphan the
// DaemonSets that may adopt it.
func (c *Controller) revisionChanged(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	rev, ok := obj.(*appsv1.ControllerRevision)
	if !ok {
		return
	}
	if ref := metav1.GetControllerOfNoCopy(rev); ref != nil {
		if ds := c.resolve(rev.Namespace, ref); ds != nil {
			c.queue.Add(dsKey(ds))
		}
		return
	}
	dss, err := c.dsLister.DaemonSets(rev.Namespace).List(labels.Everything())
	if err != nil {
		return
	}
	for _, ds := range dss {
		if sel, err := metav1.LabelSelectorAsSelector(ds.Spec.Selector); err == nil && sel.Matches(labels.Set(rev.Labels)) {
			c.queue.Add(dsKey(ds))
		}
	}
}

// sync brings one DaemonSet's pods, revisions and status in line.
func (c *Controller) sync(ctx context.Context, key string) error {
	namespace, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		c.log.Error("bad queue key", "key", key, "err", err)
		return nil
	}
	ds, err := c.dsLister.DaemonSets(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		c.expectations.forget(key)
		return nil
	}
	if err != nil {
		return err
	}
	selector, err := metav1.LabelSelectorAsSelector(ds.Spec.Selector)
	if err != nil {
		c.log.Error("bad selector", "daemonset", key, "err", err)
		return nil
	}
	if selector.Empty() {
		c.recorder.Event(ds, corev1.EventTypeWarning, ReasonSelectingAll, "This daemon set is selecting all pods. A non-empty selector is required.")
		return nil
	}
	if ds.DeletionTimestamp != nil {
		return nil // the garbage collector takes the pods
	}
	nodes, err := c.nodeLister.List(labels.Everything())
	if err != nil {
		return err
	}
	cur, old, err := c.revisions(ctx, ds, selector)
	if err != nil {
		var collision *history.CollisionError
		if errors.As(err, &collision) {
			return c.bumpCollisionCount(ctx, ds, err)
		}
		return fmt.Errorf("construct history: %w", err)
	}
	hash := cur.Labels[history.HashLabel]
	pods, err := c.claimPods(ctx, ds, selector)
	if err != nil {
		return err
	}
	byNode := groupByNode(pods)
	if !c.expectations.satisfied(key) {
		// Pods created or deleted are not all seen yet: count, don't act.
		return c.updateStatus(ctx, ds, nodes, byNode, hash, false)
	}
	err = c.update(ctx, ds, nodes, byNode, hash, old, pods)
	// Status is written even when the update failed, as Kubernetes does.
	return errors.Join(err, c.updateStatus(ctx, ds, nodes, byNode, hash, true))
}

// update creates and deletes pods per node, lets the update strategy
// replace old ones once those writes are seen, and prunes revisions.
func (c *Controller) update(ctx context.Context, ds *appsv1.DaemonSet, nodes []*corev1.Node, byNode map[string][]*corev1.Pod,
	hash string, old []*appsv1.ControllerRevision, pods []*corev1.Pod) error {
	if err := c.manage(ctx, ds, nodes, byNode, hash); err != nil {
		return err
	}
	if c.expectations.satisfied(dsKey(ds)) && ds.Spec.UpdateStrategy.Type == appsv1.RollingUpdateDaemonSetStrategyType {
		if err := c.rollingUpdate(ctx, ds, nodes, byNode, hash); err != nil {
			return err
		}
	}
	if err := c.pruneHistory(ctx, ds, old, pods); err != nil {
		return fmt.Errorf("clean up revisions: %w", err)
	}
	return nil
}

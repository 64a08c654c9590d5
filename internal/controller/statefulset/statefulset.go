// Package statefulset is kube-controller-manager's statefulset
// controller: it keeps a StatefulSet's pods named <set>-<ordinal>, each
// with a stable hostname in the set's service and its own
// PersistentVolumeClaims made from the volumeClaimTemplates; it starts
// and stops them in ordinal order (OrderedReady) or all at once
// (Parallel), rolls them to a new template from the highest ordinal down
// (RollingUpdate with partition and maxUnavailable, or OnDelete), records
// each template as a ControllerRevision (package history) for kubectl
// rollout history and undo, and reports what it sees in the status.
//
// The flow is the sample-controller loop. StatefulSet and Pod events
// only queue set keys. A sync adopts and releases pods, finds the current
// and update revisions (making the update revision if the template is
// new), makes the missing ordinals and deletes the surplus ones as the
// pod management policy allows, replaces pods of the old revision as the
// update strategy allows, writes status through the status subresource
// and prunes revisions. Pods have fixed names, so a create racing a slow
// cache fails with AlreadyExists and is retried: no expectations needed,
// as upstream.
package statefulset

import (
	"context"
	"fmt"
	"log/slog"
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
	"k8s.io/client-go/util/workqueue"

	"github.com/skiff-sh/skiff/internal/controller/history"
	"github.com/skiff-sh/skiff/internal/controller/podevents"
	"github.com/skiff-sh/skiff/internal/controller/workers"
)

// workerCount is kube-controller-manager's --concurrent-statefulset-syncs.
const workerCount = 5

var controllerKind = appsv1.SchemeGroupVersion.WithKind("StatefulSet")

// Controller is the statefulset controller.
type Controller struct {
	client    kubernetes.Interface
	setLister appslisters.StatefulSetLister
	podLister corelisters.PodLister
	pvcLister corelisters.PersistentVolumeClaimLister
	history   *history.History
	synced    []cache.InformerSynced
	queue     workqueue.TypedRateLimitingInterface[string]
	recorder  record.EventRecorder
	now       func() time.Time
	log       *slog.Logger
}

// New makes the controller on factory's informers; start the factory, then Run.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder, log *slog.Logger) *Controller {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sets, pods := factory.Apps().V1().StatefulSets(), factory.Core().V1().Pods()
	pvcs, revs := factory.Core().V1().PersistentVolumeClaims(), factory.Apps().V1().ControllerRevisions()
	c := &Controller{
		client: client, setLister: sets.Lister(), podLister: pods.Lister(), pvcLister: pvcs.Lister(),
		history: &history.History{Client: client.AppsV1(), Lister: revs.Lister()},
		synced: []cache.InformerSynced{sets.Informer().HasSynced, pods.Informer().HasSynced,
			pvcs.Informer().HasSynced, revs.Informer().HasSynced},
		recorder: recorder, now: time.Now, log: log,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "statefulset"}),
	}
	sets.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueue,
		UpdateFunc: func(_, cur any) { c.enqueue(cur) },
		DeleteFunc: c.enqueue,
	})
	pods.Informer().AddEventHandler(c.podEvents().Handler())
	return c
}

// Run syncs StatefulSets until ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	workers.Run(ctx, c.queue, c.synced, workerCount, c.sync, c.log, "sync statefulset")
	return nil
}

func setKey(set *appsv1.StatefulSet) string { return set.Namespace + "/" + set.Name }

// Event handlers: they only map an object to StatefulSet keys.

func (c *Controller) enqueue(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	if set, ok := obj.(*appsv1.StatefulSet); ok {
		c.queue.Add(setKey(set))
	}
}

// podEvents routes pod events to the owning StatefulSet, or for an
// orphan the sets whose selector matches it.
func (c *Controller) podEvents() *podevents.Router[*appsv1.StatefulSet] {
	return &podevents.Router[*appsv1.StatefulSet]{
		Queue:           c.queue,
		Kind:            controllerKind.Kind,
		Get:             func(ns, name string) (*appsv1.StatefulSet, error) { return c.setLister.StatefulSets(ns).Get(name) },
		Matching:        c.setLister.GetPodStatefulSets,
		MinReadySeconds: func(set *appsv1.StatefulSet) int32 { return set.Spec.MinReadySeconds },
	}
}

// sync brings one StatefulSet's pods, claims, revisions and status in line.
func (c *Controller) sync(ctx context.Context, key string) error {
	namespace, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		c.log.Error("bad queue key", "key", key, "err", err)
		return nil
	}
	set, err := c.setLister.StatefulSets(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	selector, err := metav1.LabelSelectorAsSelector(set.Spec.Selector)
	if err != nil {
		c.log.Error("bad selector", "statefulset", key, "err", err)
		return nil
	}
	pods, err := c.claimPods(ctx, set, selector)
	if err != nil {
		return err
	}
	revs, err := c.history.List(ctx, set, controllerKind, selector, c.canAdopt(ctx, set))
	if err != nil {
		return fmt.Errorf("list revisions: %w", err)
	}
	return c.syncSet(ctx, set, pods, revs)
}

// podsOf lists the namespace's pods; a seam for tests.
func (c *Controller) podsOf(namespace string) ([]*corev1.Pod, error) {
	return c.podLister.Pods(namespace).List(labels.Everything())
}

// Package namespace is the namespace lifecycle controller: when a namespace
// is deleted it removes everything inside it, then lifts the namespace's
// "kubernetes" finalizer so that the API server deletes the namespace itself.
package namespace

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	listerscorev1 "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// Controller empties and finalizes namespaces being deleted.
type Controller struct {
	client    kubernetes.Interface
	metadata  metadata.Interface
	resources []schema.GroupVersionResource
	lister    listerscorev1.NamespaceLister
	synced    cache.InformerSynced
	queue     workqueue.TypedRateLimitingInterface[string]
	log       *slog.Logger
}

// New returns a controller; resources are the namespaced resources to empty.
func New(client kubernetes.Interface, md metadata.Interface, factory informers.SharedInformerFactory, resources []schema.GroupVersionResource, log *slog.Logger) *Controller {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	inf := factory.Core().V1().Namespaces()
	c := &Controller{
		client: client, metadata: md, resources: resources,
		lister: inf.Lister(), synced: inf.Informer().HasSynced,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "namespace"}),
		log: log,
	}
	enqueue := func(obj any) {
		if ns, ok := obj.(*corev1.Namespace); ok && ns.DeletionTimestamp != nil {
			c.queue.Add(ns.Name)
		}
	}
	inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
	})
	return c
}

// Run works the queue until ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	defer c.queue.ShutDown()
	if !cache.WaitForCacheSync(ctx.Done(), c.synced) {
		return nil
	}
	go wait.UntilWithContext(ctx, c.worker, time.Second)
	<-ctx.Done()
	return nil
}

func (c *Controller) worker(ctx context.Context) {
	for {
		name, quit := c.queue.Get()
		if quit {
			return
		}
		err := c.sync(ctx, name)
		switch {
		case err == nil:
			c.queue.Forget(name)
		case err == errNotEmpty:
			c.queue.AddAfter(name, time.Second)
		default:
			c.log.Warn("namespace sync", "namespace", name, "err", err)
			c.queue.AddRateLimited(name)
		}
		c.queue.Done(name)
	}
}

var errNotEmpty = fmt.Errorf("namespace still has content")

func (c *Controller) sync(ctx context.Context, name string) error {
	ns, err := c.lister.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if ns.DeletionTimestamp == nil {
		return nil
	}
	remaining := 0
	background := metav1.DeletePropagationBackground
	for _, gvr := range c.resources {
		r := c.metadata.Resource(gvr).Namespace(name)
		list, err := r.List(ctx, metav1.ListOptions{})
		if err != nil {
			if apierrors.IsNotFound(err) || apierrors.IsMethodNotSupported(err) {
				continue
			}
			return fmt.Errorf("list %s: %w", gvr.Resource, err)
		}
		for _, it := range list.Items {
			remaining++
			if it.DeletionTimestamp != nil {
				continue
			}
			err := r.Delete(ctx, it.Name, metav1.DeleteOptions{PropagationPolicy: &background})
			if err != nil && !apierrors.IsNotFound(err) {
				return fmt.Errorf("delete %s %s/%s: %w", gvr.Resource, name, it.Name, err)
			}
		}
	}
	if remaining > 0 {
		return errNotEmpty
	}
	fins := ns.Spec.Finalizers[:0:0]
	for _, f := range ns.Spec.Finalizers {
		if f != corev1.FinalizerKubernetes {
			fins = append(fins, f)
		}
	}
	if len(fins) == len(ns.Spec.Finalizers) {
		return nil
	}
	upd := ns.DeepCopy()
	upd.Spec.Finalizers = fins
	_, err = c.client.CoreV1().Namespaces().Finalize(ctx, upd, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

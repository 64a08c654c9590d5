// Package serviceaccount keeps what every namespace starts with in
// Kubernetes: the "default" ServiceAccount (kube-controller-manager's
// serviceaccount controller) and the "kube-root-ca.crt" ConfigMap holding
// the cluster CA (its root-ca-cert-publisher).
package serviceaccount

import (
	"context"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	listerscorev1 "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// RootCAConfigMap is the ConfigMap every namespace gets with the cluster CA.
const RootCAConfigMap = "kube-root-ca.crt"

// Controller ensures each namespace's default ServiceAccount and root CA.
type Controller struct {
	client     kubernetes.Interface
	caPEM      string
	namespaces listerscorev1.NamespaceLister
	accounts   listerscorev1.ServiceAccountLister
	configMaps listerscorev1.ConfigMapLister
	synced     []cache.InformerSynced
	queue      workqueue.TypedRateLimitingInterface[string]
	log        *slog.Logger
}

// New returns the controller; caPEM is the cluster CA certificate.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, caPEM []byte, log *slog.Logger) *Controller {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ns := factory.Core().V1().Namespaces()
	sa := factory.Core().V1().ServiceAccounts()
	cm := factory.Core().V1().ConfigMaps()
	c := &Controller{
		client: client, caPEM: string(caPEM),
		namespaces: ns.Lister(), accounts: sa.Lister(), configMaps: cm.Lister(),
		synced: []cache.InformerSynced{ns.Informer().HasSynced, sa.Informer().HasSynced, cm.Informer().HasSynced},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "serviceaccount"}),
		log: log,
	}
	ns.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { c.enqueueNamespace(obj) },
		UpdateFunc: func(_, obj any) { c.enqueueNamespace(obj) },
	})
	// Deleting either object brings it back.
	requeue := cache.ResourceEventHandlerFuncs{DeleteFunc: func(obj any) {
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		if m, ok := obj.(metav1.Object); ok {
			c.queue.Add(m.GetNamespace())
		}
	}}
	sa.Informer().AddEventHandler(requeue)
	cm.Informer().AddEventHandler(requeue)
	return c
}

func (c *Controller) enqueueNamespace(obj any) {
	if ns, ok := obj.(*corev1.Namespace); ok {
		c.queue.Add(ns.Name)
	}
}

// Run works the queue until ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	defer c.queue.ShutDown()
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
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
		if err := c.sync(ctx, name); err != nil {
			c.log.Warn("serviceaccount sync", "namespace", name, "err", err)
			c.queue.AddRateLimited(name)
		} else {
			c.queue.Forget(name)
		}
		c.queue.Done(name)
	}
}

func (c *Controller) sync(ctx context.Context, namespace string) error {
	ns, err := c.namespaces.Get(namespace)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if ns.DeletionTimestamp != nil || ns.Status.Phase == corev1.NamespaceTerminating {
		return nil
	}
	if _, err := c.accounts.ServiceAccounts(namespace).Get("default"); apierrors.IsNotFound(err) {
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: namespace}}
		if _, err := c.client.CoreV1().ServiceAccounts(namespace).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) && !isTerminating(err) {
			return err
		}
	}
	cm, err := c.configMaps.ConfigMaps(namespace).Get(RootCAConfigMap)
	switch {
	case apierrors.IsNotFound(err):
		cm := &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: RootCAConfigMap, Namespace: namespace,
				Annotations: map[string]string{"kubernetes.io/description": "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."}},
			Data: map[string]string{"ca.crt": c.caPEM},
		}
		if _, err := c.client.CoreV1().ConfigMaps(namespace).Create(ctx, cm, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) && !isTerminating(err) {
			return err
		}
	case err == nil && cm.Data["ca.crt"] != c.caPEM:
		upd := cm.DeepCopy()
		if upd.Data == nil {
			upd.Data = map[string]string{}
		}
		upd.Data["ca.crt"] = c.caPEM
		if _, err := c.client.CoreV1().ConfigMaps(namespace).Update(ctx, upd, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	return nil
}

// isTerminating reports the refusal to create content in a namespace that
// started terminating after the informer saw it.
func isTerminating(err error) bool {
	return apierrors.IsForbidden(err) || apierrors.IsNotFound(err)
}

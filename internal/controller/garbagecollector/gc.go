// Package garbagecollector deletes objects whose owners are gone and carries
// out the propagation policies of a delete: Background (dependents go after
// the owner), Foreground (the owner waits for its dependents, through the
// foregroundDeletion finalizer) and Orphan (dependents lose their owner
// reference, through the orphan finalizer). It follows ownerReferences
// across every resource, watching metadata only.
package garbagecollector

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// Resource is one kind the collector follows.
type Resource struct {
	GVR        schema.GroupVersionResource
	Kind       string
	Namespaced bool
}

// node is one object in the ownership graph.
type node struct {
	gvr        schema.GroupVersionResource
	namespace  string
	name       string
	uid        types.UID
	owners     []metav1.OwnerReference
	deleting   bool
	finalizers []string
}

// Collector keeps the ownership graph and acts on it.
type Collector struct {
	client    metadata.Interface
	resources []Resource
	byKind    map[schema.GroupKind]Resource
	factory   metadatainformer.SharedInformerFactory
	queue     workqueue.TypedRateLimitingInterface[types.UID]
	log       *slog.Logger

	mu         sync.Mutex
	nodes      map[types.UID]*node
	dependents map[types.UID]map[types.UID]bool
	synced     []cache.InformerSynced
}

// New returns a collector over the given resources.
func New(client metadata.Interface, resources []Resource, log *slog.Logger) *Collector {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Collector{
		client: client, resources: resources, byKind: map[schema.GroupKind]Resource{},
		factory: metadatainformer.NewSharedInformerFactory(client, 0),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[types.UID](),
			workqueue.TypedRateLimitingQueueConfig[types.UID]{Name: "garbagecollector"}),
		log: log, nodes: map[types.UID]*node{}, dependents: map[types.UID]map[types.UID]bool{},
	}
	for _, r := range resources {
		c.byKind[schema.GroupKind{Group: r.GVR.Group, Kind: r.Kind}] = r
		gvr := r.GVR
		inf := c.factory.ForResource(gvr).Informer()
		inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { c.observe(gvr, obj) },
			UpdateFunc: func(_, obj any) { c.observe(gvr, obj) },
			DeleteFunc: func(obj any) { c.forget(obj) },
		})
		c.synced = append(c.synced, inf.HasSynced)
	}
	return c
}

// Run watches and collects until ctx ends.
func (c *Collector) Run(ctx context.Context) error {
	defer c.queue.ShutDown()
	c.factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		return nil
	}
	// Objects seen before the graph was complete may have owners that were
	// simply not listed yet: look at them again now.
	c.mu.Lock()
	for uid, n := range c.nodes {
		if len(n.owners) > 0 || n.deleting {
			c.queue.Add(uid)
		}
	}
	c.mu.Unlock()
	for range 2 {
		go wait.UntilWithContext(ctx, c.worker, time.Second)
	}
	<-ctx.Done()
	return nil
}

func accessor(obj any) (*metav1.PartialObjectMetadata, bool) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	m, ok := obj.(*metav1.PartialObjectMetadata)
	return m, ok
}

func (c *Collector) observe(gvr schema.GroupVersionResource, obj any) {
	m, ok := accessor(obj)
	if !ok {
		return
	}
	n := &node{gvr: gvr, namespace: m.Namespace, name: m.Name, uid: m.UID, owners: m.OwnerReferences,
		deleting: m.DeletionTimestamp != nil, finalizers: m.Finalizers}
	c.mu.Lock()
	if old := c.nodes[m.UID]; old != nil {
		for _, o := range old.owners {
			delete(c.dependents[o.UID], m.UID)
		}
	}
	c.nodes[m.UID] = n
	for _, o := range n.owners {
		if c.dependents[o.UID] == nil {
			c.dependents[o.UID] = map[types.UID]bool{}
		}
		c.dependents[o.UID][m.UID] = true
	}
	c.mu.Unlock()
	if len(n.owners) > 0 || (n.deleting && (slices.Contains(n.finalizers, metav1.FinalizerOrphanDependents) || slices.Contains(n.finalizers, metav1.FinalizerDeleteDependents))) {
		c.queue.Add(m.UID)
	}
	// An owner that changed may unblock its foreground-deleting owners.
	for _, o := range n.owners {
		c.queue.Add(o.UID)
	}
}

func (c *Collector) forget(obj any) {
	m, ok := accessor(obj)
	if !ok {
		return
	}
	c.mu.Lock()
	n := c.nodes[m.UID]
	delete(c.nodes, m.UID)
	var deps []types.UID
	for d := range c.dependents[m.UID] {
		deps = append(deps, d)
	}
	if n != nil {
		for _, o := range n.owners {
			delete(c.dependents[o.UID], m.UID)
		}
	}
	c.mu.Unlock()
	for _, d := range deps {
		c.queue.Add(d)
	}
	if n != nil {
		for _, o := range n.owners {
			c.queue.Add(o.UID)
		}
	}
}

func (c *Collector) worker(ctx context.Context) {
	for {
		uid, quit := c.queue.Get()
		if quit {
			return
		}
		if err := c.sync(ctx, uid); err != nil {
			c.log.Warn("garbage collection", "uid", uid, "err", err)
			c.queue.AddRateLimited(uid)
		} else {
			c.queue.Forget(uid)
		}
		c.queue.Done(uid)
	}
}

func (c *Collector) snapshot(uid types.UID) (*node, []*node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.nodes[uid]
	if n == nil {
		return nil, nil
	}
	cp := *n
	var deps []*node
	for d := range c.dependents[uid] {
		if dn := c.nodes[d]; dn != nil {
			dc := *dn
			deps = append(deps, &dc)
		}
	}
	return &cp, deps
}

func (c *Collector) sync(ctx context.Context, uid types.UID) error {
	n, deps := c.snapshot(uid)
	if n == nil {
		return nil
	}
	if n.deleting && slices.Contains(n.finalizers, metav1.FinalizerOrphanDependents) {
		return c.orphan(ctx, n, deps)
	}
	if n.deleting && slices.Contains(n.finalizers, metav1.FinalizerDeleteDependents) {
		return c.foreground(ctx, n, deps)
	}
	if len(n.owners) > 0 && !n.deleting {
		return c.collectIfOwnersGone(ctx, n)
	}
	return nil
}

// orphan removes the owner's references from its dependents, then the
// orphan finalizer from the owner.
func (c *Collector) orphan(ctx context.Context, owner *node, deps []*node) error {
	for _, d := range deps {
		if err := c.removeOwnerRef(ctx, d, owner.uid); err != nil {
			return err
		}
	}
	return c.removeFinalizer(ctx, owner, metav1.FinalizerOrphanDependents)
}

// foreground deletes the dependents (in the foreground themselves) and lifts
// the owner's finalizer once none that blocks it is left.
func (c *Collector) foreground(ctx context.Context, owner *node, deps []*node) error {
	blocking := 0
	fg := metav1.DeletePropagationForeground
	for _, d := range deps {
		if ref := ownerRef(d, owner.uid); ref != nil && ref.BlockOwnerDeletion != nil && *ref.BlockOwnerDeletion {
			blocking++
		}
		if !d.deleting {
			err := c.client.Resource(d.gvr).Namespace(d.namespace).Delete(ctx, d.name, metav1.DeleteOptions{
				PropagationPolicy: &fg, Preconditions: &metav1.Preconditions{UID: &d.uid}})
			if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
				return err
			}
		}
	}
	if blocking > 0 {
		return nil // the dependents' deletion events requeue the owner
	}
	return c.removeFinalizer(ctx, owner, metav1.FinalizerDeleteDependents)
}

// collectIfOwnersGone deletes a dependent none of whose owners exists, and
// drops references to owners that are gone when others remain.
func (c *Collector) collectIfOwnersGone(ctx context.Context, n *node) error {
	var gone []types.UID
	waitingForeground := false
	for _, o := range n.owners {
		exists, deletingForeground, err := c.ownerState(ctx, n, o)
		if err != nil {
			return err
		}
		if !exists {
			gone = append(gone, o.UID)
		}
		if deletingForeground {
			waitingForeground = true
		}
	}
	if len(gone) == 0 {
		if waitingForeground {
			// The owner's foreground deletion deletes this object.
			return nil
		}
		return nil
	}
	if len(gone) < len(n.owners) {
		for _, uid := range gone {
			if err := c.removeOwnerRef(ctx, n, uid); err != nil {
				return err
			}
		}
		return nil
	}
	bg := metav1.DeletePropagationBackground
	err := c.client.Resource(n.gvr).Namespace(n.namespace).Delete(ctx, n.name, metav1.DeleteOptions{
		PropagationPolicy: &bg, Preconditions: &metav1.Preconditions{UID: &n.uid}})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	return err
}

// ownerState reports whether an owner reference names a live object, asking
// the API when the graph does not know the owner.
func (c *Collector) ownerState(ctx context.Context, n *node, ref metav1.OwnerReference) (exists, foreground bool, err error) {
	c.mu.Lock()
	owner := c.nodes[ref.UID]
	c.mu.Unlock()
	if owner != nil {
		return true, owner.deleting && slices.Contains(owner.finalizers, metav1.FinalizerDeleteDependents), nil
	}
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return false, false, nil
	}
	r, ok := c.byKind[schema.GroupKind{Group: gv.Group, Kind: ref.Kind}]
	if !ok {
		return true, false, nil // a kind skiff does not serve: leave it alone
	}
	ns := ""
	if r.Namespaced {
		ns = n.namespace
	}
	live, err := c.client.Resource(r.GVR).Namespace(ns).Get(ctx, ref.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false, false, nil
	}
	if err != nil {
		return false, false, err
	}
	return live.UID == ref.UID, false, nil
}

func ownerRef(n *node, uid types.UID) *metav1.OwnerReference {
	for i := range n.owners {
		if n.owners[i].UID == uid {
			return &n.owners[i]
		}
	}
	return nil
}

// removeOwnerRef patches one owner reference out of an object, guarded by
// the object's uid so that a recreated namesake is left alone.
func (c *Collector) removeOwnerRef(ctx context.Context, n *node, owner types.UID) error {
	var keep []metav1.OwnerReference
	for _, o := range n.owners {
		if o.UID != owner {
			keep = append(keep, o)
		}
	}
	if len(keep) == len(n.owners) {
		return nil
	}
	patch := map[string]any{"metadata": map[string]any{"uid": n.uid, "ownerReferences": keep}}
	return c.patch(ctx, n, patch)
}

func (c *Collector) removeFinalizer(ctx context.Context, n *node, finalizer string) error {
	var keep []string
	for _, f := range n.finalizers {
		if f != finalizer {
			keep = append(keep, f)
		}
	}
	if keep == nil {
		keep = []string{}
	}
	patch := map[string]any{"metadata": map[string]any{"uid": n.uid, "finalizers": keep}}
	return c.patch(ctx, n, patch)
}

func (c *Collector) patch(ctx context.Context, n *node, patch map[string]any) error {
	data, err := json.Marshal(patch)
	if err != nil {
		return err
	}
	_, err = c.client.Resource(n.gvr).Namespace(n.namespace).Patch(ctx, n.name, types.MergePatchType, data, metav1.PatchOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("patch %s %s/%s: %w", n.gvr.Resource, n.namespace, n.name, err)
	}
	return nil
}

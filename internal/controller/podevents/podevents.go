// Package podevents routes pod events to the workload controllers that
// care, as kube-controller-manager's ReplicaSet, DaemonSet and StatefulSet
// controllers do: a pod's event goes to the controller its controller
// reference names; an orphan's to every controller whose selector matches
// it, which may adopt it.
package podevents

import (
	"reflect"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

// Queue is where the keys of the controllers to sync go.
type Queue interface {
	Add(key string)
	AddAfter(key string, d time.Duration)
}

// Router turns pod informer events into the queue keys
// (namespace/name) of controllers of one kind, T.
type Router[T metav1.Object] struct {
	Queue Queue
	// Kind is the controllers' kind, as pods' controller references name it.
	Kind string
	// Get reads a controller from the informer's cache.
	Get func(namespace, name string) (T, error)
	// Matching returns the controllers whose selector matches the orphan.
	Matching func(pod *corev1.Pod) ([]T, error)
	// MinReadySeconds is how long a controller's ready pod takes to count
	// as available.
	MinReadySeconds func(T) int32
	// Created and Deleted, when set, are told of an owned pod seen made or
	// going (a controller's expectations).
	Created func(key string)
	Deleted func(key string, pod *corev1.Pod)
}

// Key is a controller's queue key.
func Key(o metav1.Object) string { return o.GetNamespace() + "/" + o.GetName() }

// resolve returns the live controller ref names in namespace: of the
// router's kind, in the cache, with ref's UID.
func (r *Router[T]) resolve(namespace string, ref *metav1.OwnerReference) (T, bool) {
	var none T
	if ref.Kind != r.Kind {
		return none, false
	}
	o, err := r.Get(namespace, ref.Name)
	if err != nil || o.GetUID() != ref.UID {
		return none, false
	}
	return o, true
}

// Handler is the router's informer event handler.
func (r *Router[T]) Handler() cache.ResourceEventHandlerFuncs {
	return cache.ResourceEventHandlerFuncs{AddFunc: r.add, UpdateFunc: r.update, DeleteFunc: r.delete}
}

func (r *Router[T]) add(obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	if pod.DeletionTimestamp != nil {
		// Seen for the first time already going (after a restart): not a
		// creation to observe.
		r.delete(pod)
		return
	}
	if ref := metav1.GetControllerOfNoCopy(pod); ref != nil {
		if o, ok := r.resolve(pod.Namespace, ref); ok {
			if r.Created != nil {
				r.Created(Key(o))
			}
			r.Queue.Add(Key(o))
		}
		return
	}
	r.queueMatching(pod)
}

func (r *Router[T]) update(old, cur any) {
	oldPod, ok1 := old.(*corev1.Pod)
	curPod, ok2 := cur.(*corev1.Pod)
	if !ok1 || !ok2 || oldPod.ResourceVersion == curPod.ResourceVersion {
		return // a resync: nothing changed
	}
	labelsChanged := !reflect.DeepEqual(oldPod.Labels, curPod.Labels)
	if curPod.DeletionTimestamp != nil {
		// A graceful delete starts: count the pod gone now rather than
		// when the node agent is done with it, so that its replacement
		// is made at once.
		r.delete(curPod)
		if labelsChanged {
			r.delete(oldPod)
		}
		return
	}
	curRef, oldRef := metav1.GetControllerOfNoCopy(curPod), metav1.GetControllerOfNoCopy(oldPod)
	refChanged := !reflect.DeepEqual(curRef, oldRef)
	if refChanged && oldRef != nil {
		if o, ok := r.resolve(oldPod.Namespace, oldRef); ok {
			r.Queue.Add(Key(o))
		}
	}
	if curRef != nil {
		o, ok := r.resolve(curPod.Namespace, curRef)
		if !ok {
			return
		}
		r.Queue.Add(Key(o))
		// A pod that just became ready becomes available minReadySeconds
		// later, with no event to say so: look again then (a second more
		// against rounding).
		if minReady := r.MinReadySeconds(o); minReady > 0 && !podReady(oldPod) && podReady(curPod) {
			r.Queue.AddAfter(Key(o), time.Duration(minReady)*time.Second+time.Second)
		}
		return
	}
	if labelsChanged || refChanged {
		r.queueMatching(curPod)
	}
}

func (r *Router[T]) delete(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	ref := metav1.GetControllerOfNoCopy(pod)
	if ref == nil {
		return // nobody waits for an orphan
	}
	o, ok := r.resolve(pod.Namespace, ref)
	if !ok {
		return
	}
	if r.Deleted != nil {
		r.Deleted(Key(o), pod)
	}
	r.Queue.Add(Key(o))
}

func (r *Router[T]) queueMatching(pod *corev1.Pod) {
	matching, _ := r.Matching(pod) // an error: none match
	for _, o := range matching {
		r.Queue.Add(Key(o))
	}
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

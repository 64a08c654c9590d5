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

// Owner is a live controller that a pod's controller reference names.
type Owner struct {
	Key             string
	MinReadySeconds int32
}

// Router turns pod informer events into queued controller keys.
type Router struct {
	Queue Queue
	// Resolve returns the controller ref names in namespace, if it is of
	// the router's kind, exists and has ref's UID.
	Resolve func(namespace string, ref *metav1.OwnerReference) (Owner, bool)
	// Matching returns the keys of the controllers whose selector matches
	// the orphan pod.
	Matching func(pod *corev1.Pod) []string
	// Created and Deleted, when set, are told of an owned pod seen made or
	// going (a controller's expectations).
	Created func(key string)
	Deleted func(key string, pod *corev1.Pod)
}

// Handler is the router's informer event handler.
func (r *Router) Handler() cache.ResourceEventHandlerFuncs {
	return cache.ResourceEventHandlerFuncs{AddFunc: r.add, UpdateFunc: r.update, DeleteFunc: r.delete}
}

func (r *Router) add(obj any) {
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
		if o, ok := r.Resolve(pod.Namespace, ref); ok {
			if r.Created != nil {
				r.Created(o.Key)
			}
			r.Queue.Add(o.Key)
		}
		return
	}
	r.queueMatching(pod)
}

func (r *Router) update(old, cur any) {
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
		if o, ok := r.Resolve(oldPod.Namespace, oldRef); ok {
			r.Queue.Add(o.Key)
		}
	}
	if curRef != nil {
		o, ok := r.Resolve(curPod.Namespace, curRef)
		if !ok {
			return
		}
		r.Queue.Add(o.Key)
		// A pod that just became ready becomes available minReadySeconds
		// later, with no event to say so: look again then (a second more
		// against rounding).
		if !podReady(oldPod) && podReady(curPod) && o.MinReadySeconds > 0 {
			r.Queue.AddAfter(o.Key, time.Duration(o.MinReadySeconds)*time.Second+time.Second)
		}
		return
	}
	if labelsChanged || refChanged {
		r.queueMatching(curPod)
	}
}

func (r *Router) delete(obj any) {
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
	o, ok := r.Resolve(pod.Namespace, ref)
	if !ok {
		return
	}
	if r.Deleted != nil {
		r.Deleted(o.Key, pod)
	}
	r.Queue.Add(o.Key)
}

func (r *Router) queueMatching(pod *corev1.Pod) {
	for _, key := range r.Matching(pod) {
		r.Queue.Add(key)
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

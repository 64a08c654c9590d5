package apiserver

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiff-sh/skiff/internal/registry"
)

// Finalizers the garbage collector acts on, as in Kubernetes.
const (
	finalizerOrphan     = metav1.FinalizerOrphanDependents
	finalizerForeground = metav1.FinalizerDeleteDependents
)

// finalized reports whether an object marked for deletion has nothing left
// to wait for (no finalizer, no grace period) and can be removed.
func finalized(obj runtime.Object) bool {
	m, err := meta.Accessor(obj)
	if err != nil || m.GetDeletionTimestamp() == nil || len(m.GetFinalizers()) > 0 {
		return false
	}
	if ns, ok := obj.(*corev1.Namespace); ok {
		return len(ns.Spec.Finalizers) == 0
	}
	g := m.GetDeletionGracePeriodSeconds()
	return g == nil || *g == 0
}

// propagation returns the policy a delete asks for.
func propagation(opts *metav1.DeleteOptions) metav1.DeletionPropagation {
	if opts.PropagationPolicy != nil {
		return *opts.PropagationPolicy
	}
	if opts.OrphanDependents != nil {
		if *opts.OrphanDependents {
			return metav1.DeletePropagationOrphan
		}
		return metav1.DeletePropagationBackground
	}
	return ""
}

// podGrace returns the grace period a pod deletion gets: none for a pod that
// never reached a node or has finished, else the request's or the pod's.
func podGrace(pod *corev1.Pod, opts *metav1.DeleteOptions) int64 {
	if pod.Spec.NodeName == "" || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return 0
	}
	if opts.GracePeriodSeconds != nil {
		return max(*opts.GracePeriodSeconds, 0)
	}
	if pod.Spec.TerminationGracePeriodSeconds != nil {
		return max(*pod.Spec.TerminationGracePeriodSeconds, 0)
	}
	return corev1.DefaultTerminationGracePeriodSeconds
}

// needsGracefulDeletion reports whether a delete only marks the object
// (deletionTimestamp) rather than removing it at once.
func needsGracefulDeletion(res *registry.Resource, obj runtime.Object, opts *metav1.DeleteOptions) bool {
	m, _ := meta.Accessor(obj)
	if len(m.GetFinalizers()) > 0 {
		return true
	}
	switch propagation(opts) {
	case metav1.DeletePropagationOrphan, metav1.DeletePropagationForeground:
		return true
	}
	switch o := obj.(type) {
	case *corev1.Namespace:
		return len(o.Spec.Finalizers) > 0
	case *corev1.Pod:
		return podGrace(o, opts) > 0
	}
	return false
}

// markDeleting sets deletionTimestamp and the finalizers the propagation
// policy asks for.
func markDeleting(res *registry.Resource, obj runtime.Object, opts *metav1.DeleteOptions) {
	m, _ := meta.Accessor(obj)
	var grace int64
	if pod, ok := obj.(*corev1.Pod); ok {
		grace = podGrace(pod, opts)
	}
	now := time.Now()
	if m.GetDeletionTimestamp() == nil {
		ts := metav1.NewTime(now.Add(time.Duration(grace) * time.Second))
		m.SetDeletionTimestamp(&ts)
		m.SetDeletionGracePeriodSeconds(&grace)
		if m.GetGeneration() > 0 {
			m.SetGeneration(m.GetGeneration() + 1)
		}
	} else if old := m.GetDeletionGracePeriodSeconds(); old != nil && grace < *old {
		// A second delete may only shorten the grace period.
		ts := metav1.NewTime(now.Add(time.Duration(grace) * time.Second))
		m.SetDeletionTimestamp(&ts)
		m.SetDeletionGracePeriodSeconds(&grace)
	}
	fins := m.GetFinalizers()
	switch propagation(opts) {
	case metav1.DeletePropagationOrphan:
		fins = addString(removeString(fins, finalizerForeground), finalizerOrphan)
	case metav1.DeletePropagationForeground:
		fins = addString(removeString(fins, finalizerOrphan), finalizerForeground)
	case metav1.DeletePropagationBackground:
		fins = removeString(removeString(fins, finalizerOrphan), finalizerForeground)
	}
	m.SetFinalizers(fins)
	if ns, ok := obj.(*corev1.Namespace); ok {
		ns.Status.Phase = corev1.NamespaceTerminating
	}
}

// setNamespaceFinalizers copies spec.finalizers for namespaces/finalize.
func setNamespaceFinalizers(dst, src runtime.Object) {
	d, ok := dst.(*corev1.Namespace)
	s, ok2 := src.(*corev1.Namespace)
	if ok && ok2 {
		d.Spec.Finalizers = s.Spec.Finalizers
	}
}

func addString(list []string, s string) []string {
	if containsString(list, s) {
		return list
	}
	return append(list, s)
}

func removeString(list []string, s string) []string {
	out := list[:0:0]
	for _, x := range list {
		if x != s {
			out = append(out, x)
		}
	}
	return out
}

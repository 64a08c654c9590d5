// Package events gives skiff's components a Kubernetes event recorder: what
// the scheduler, controllers and agents record is written as core/v1 Events
// through the API, so `kubectl describe` and `kubectl get events` list it.
package events

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-sh/skiff/internal/registry"
)

// Recorder records events as one component.
type Recorder struct {
	record.EventRecorder
	broadcaster record.EventBroadcaster
}

// NewRecorder starts writing events through client, reported as component
// (e.g. "default-scheduler"). Events are aggregated and rate limited as
// client-go does for kube components. Stop it with Shutdown.
func NewRecorder(ctx context.Context, client kubernetes.Interface, component string) *Recorder {
	return NewHostRecorder(ctx, client, component, "")
}

// NewHostRecorder is NewRecorder for a component that runs on one node (the
// agent): its events name the host, as the kubelet's do.
func NewHostRecorder(ctx context.Context, client kubernetes.Interface, component, host string) *Recorder {
	b := record.NewBroadcaster(record.WithContext(ctx))
	b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	return &Recorder{
		EventRecorder: b.NewRecorder(registry.Scheme, corev1.EventSource{Component: component, Host: host}),
		broadcaster:   b,
	}
}

// Shutdown stops recording and flushes what is queued.
func (r *Recorder) Shutdown() { r.broadcaster.Shutdown() }

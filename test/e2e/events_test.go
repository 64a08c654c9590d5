package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-sh/skiff/internal/events"
)

func TestRecordedEventsAreListedByKubectlDescribe(t *testing.T) {
	s := startServer(t)
	ctx := context.Background()
	client := s.client()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "evented", Namespace: "default"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}
	pod, err := client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rec := events.NewRecorder(ctx, client, "skiff-test")
	defer rec.Shutdown()
	for range 3 {
		rec.Event(pod, corev1.EventTypeWarning, "FailedScheduling", "0/1 nodes are available: 1 Insufficient cpu.")
	}
	eventually(t, 20*time.Second, func() error {
		out := s.kubectl("describe", "pod", "evented")
		if out.err != nil {
			return out.err
		}
		if !strings.Contains(out.stdout, "FailedScheduling") || !strings.Contains(out.stdout, "0/1 nodes are available: 1 Insufficient cpu.") {
			return errorf("describe lacks the event:\n%s", out.stdout)
		}
		// Repeats are aggregated into one event with a count.
		if !strings.Contains(out.stdout, "(x3 over") {
			return errorf("describe lacks the aggregated count:\n%s", out.stdout)
		}
		return nil
	})
	out := s.mustKubectl("get", "events", "--field-selector", "involvedObject.name=evented")
	contains(t, "get events", out, "Warning", "FailedScheduling", "pod/evented")
}

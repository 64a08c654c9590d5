package registry

import (
	"reflect"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestDaemonSetTableCells(t *testing.T) {
	for _, tc := range []struct {
		name         string
		nodeSelector map[string]string
		want         string
	}{
		{"no node selector", nil, "<none>"},
		{"node selector", map[string]string{"kubernetes.io/os": "linux"}, "kubernetes.io/os=linux"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ds := testDaemonSet()
			ds.CreationTimestamp = metav1.NewTime(time.Now().Add(-3 * 24 * time.Hour))
			ds.Spec.Template.Spec.NodeSelector = tc.nodeSelector
			ds.Status = appsv1.DaemonSetStatus{
				DesiredNumberScheduled: 3, CurrentNumberScheduled: 3, NumberReady: 2,
				UpdatedNumberScheduled: 1, NumberAvailable: 2,
			}
			got := daemonsets().Table.Cells(ds)
			want := []any{int64(3), int64(3), int64(2), int64(1), int64(2), tc.want, "3d", "web", "nginx:1.27", "app=web"}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("cells = %#v\nwant %#v", got, want)
			}
		})
	}
}

// The template generation annotation is the server's: 1 on create (or
// what a client set above it), one more at each template change, never
// what a client writes on update.
func TestDaemonSetTemplateGenerationIsTheServers(t *testing.T) {
	const ann = "deprecated.daemonset.template.generation"
	r := daemonsets()
	created := testDaemonSet()
	r.PrepareForCreate(created)
	if got := created.Annotations[ann]; got != "1" {
		t.Fatalf("on create: %q, want 1", got)
	}
	preset := testDaemonSet()
	preset.Annotations = map[string]string{ann: "7"}
	r.PrepareForCreate(preset)
	if got := preset.Annotations[ann]; got != "7" {
		t.Errorf("on create with 7: %q, want 7 kept", got)
	}

	labelsOnly := created.DeepCopy()
	labelsOnly.Labels = map[string]string{"x": "y"}
	labelsOnly.Annotations[ann] = "40"
	r.PrepareForUpdate(labelsOnly, created)
	if got := labelsOnly.Annotations[ann]; got != "1" {
		t.Errorf("after a change outside the template (client wrote 40): %q, want 1", got)
	}
	newImage := created.DeepCopy()
	newImage.Spec.Template.Spec.Containers[0].Image = "nginx:1.28"
	delete(newImage.Annotations, ann)
	r.PrepareForUpdate(newImage, created)
	if got := newImage.Annotations[ann]; got != "2" {
		t.Errorf("after a template change (client dropped it): %q, want 2", got)
	}
}

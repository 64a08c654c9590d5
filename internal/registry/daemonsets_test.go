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

package storageprotection

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
)

// A claim being deleted keeps its finalizer while any scheduled pod names
// it, a finished one too (as upstream: the claim goes with its last pod),
// and loses it once none does.
func TestClaimIsKeptWhileAnyPodNamesIt(t *testing.T) {
	claim := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "data", Namespace: "default",
		DeletionTimestamp: &metav1.Time{}, Finalizers: []string{pvcFinalizer}, ResourceVersion: "5"}}
	user := func(name string, phase corev1.PodPhase) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
			Spec: corev1.PodSpec{NodeName: "n1", Volumes: []corev1.Volume{{Name: "d", VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}}}},
			Status: corev1.PodStatus{Phase: phase}}
	}
	for _, tc := range []struct {
		name string
		pods []*corev1.Pod
		kept bool
	}{
		{"a running pod", []*corev1.Pod{user("p", corev1.PodRunning)}, true},
		{"a succeeded pod", []*corev1.Pod{user("p", corev1.PodSucceeded)}, true},
		{"no pod", nil, false},
		{"a pod not yet scheduled", []*corev1.Pod{func() *corev1.Pod { p := user("p", corev1.PodPending); p.Spec.NodeName = ""; return p }()}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs := []runtime.Object{claim}
			for _, p := range tc.pods {
				objs = append(objs, p)
			}
			client := fake.NewClientset(objs...)
			factory := informers.NewSharedInformerFactory(client, 0)
			c := New(client, factory, nil)
			for _, o := range objs {
				switch o := o.(type) {
				case *corev1.Pod:
					factory.Core().V1().Pods().Informer().GetIndexer().Add(o)
				case *corev1.PersistentVolumeClaim:
					factory.Core().V1().PersistentVolumeClaims().Informer().GetIndexer().Add(o)
				}
			}
			if err := c.sync(context.Background(), "claim/default/data"); err != nil {
				t.Fatal(err)
			}
			patched := false
			for _, a := range client.Actions() {
				patched = patched || a.GetVerb() == "patch"
			}
			if patched == tc.kept {
				t.Errorf("finalizer removed = %v, want %v", patched, !tc.kept)
			}
		})
	}
}

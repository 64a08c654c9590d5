package bench

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-sh/skiff/test/testimage"
)

// BenchmarkStatefulSet10 is the time from creating a StatefulSet of 10
// replicas with OrderedReady (each pod made only once the one before is
// Running and Ready) until a watch has seen all ten Ready, without claims
// and with one local-path claim per pod (provisioned when its pod is
// scheduled). Ordered start is a chain of ten controller → scheduler →
// agent → status round trips, so per-pod latency is what it shows.
func BenchmarkStatefulSet10(b *testing.B) {
	_, c := startNode(b)
	for i := range b.N {
		for _, claims := range []bool{false, true} {
			name := fmt.Sprintf("set%d", i)
			unit := "s-10-ready"
			if claims {
				name += "-claims"
				unit = "s-10-ready-with-claims"
			}
			b.ReportMetric(runStatefulSet(b, c, name, 10, claims).Seconds(), unit)
		}
	}
}

// runStatefulSet creates an OrderedReady set of n and returns how long
// until all n pods are Ready, then deletes the set, its pods and claims.
func runStatefulSet(b *testing.B, c kubernetes.Interface, name string, n int32, claims bool) time.Duration {
	ctx := context.Background()
	labels := map[string]string{"app": name}
	w, err := c.CoreV1().Pods("default").Watch(ctx, metav1.ListOptions{LabelSelector: "app=" + name})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Stop()
	grace := int64(0)
	set := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: appsv1.StatefulSetSpec{
		Replicas: &n, ServiceName: name, Selector: &metav1.LabelSelector{MatchLabels: labels},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
			Spec: corev1.PodSpec{TerminationGracePeriodSeconds: &grace,
				Containers: []corev1.Container{{Name: "main", Image: testimage.Ref, Command: []string{"sleep", "3600"}}}}}}}
	if claims {
		set.Spec.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "data"},
			Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Mi")}}}}}
		set.Spec.Template.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
	}
	start := time.Now()
	if _, err := c.AppsV1().StatefulSets("default").Create(ctx, set, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	ready := map[string]bool{}
	timeout := time.After(5 * time.Minute)
	for len(ready) < int(n) {
		select {
		case ev := <-w.ResultChan():
			if pod, ok := ev.Object.(*corev1.Pod); ok && podReady(pod) {
				ready[pod.Name] = true
			}
		case <-timeout:
			b.Fatalf("%d of %d pods Ready after 5 minutes", len(ready), n)
		}
	}
	took := time.Since(start)
	c.AppsV1().StatefulSets("default").Delete(ctx, name, metav1.DeleteOptions{})
	deletePods(b, c)
	if claims {
		c.CoreV1().PersistentVolumeClaims("default").DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: "app=" + name})
	}
	return took
}

func podReady(p *corev1.Pod) bool {
	for _, cond := range p.Status.Conditions {
		if cond.Type == corev1.PodReady {
			return cond.Status == corev1.ConditionTrue
		}
	}
	return false
}

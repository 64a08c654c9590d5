package scheduler

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestNodesWithThePodsImageScoreHigher(t *testing.T) {
	withImage := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "warm"}, Status: corev1.NodeStatus{Images: []corev1.ContainerImage{
		{Names: []string{"docker.io/library/app:1"}, SizeBytes: 500 << 20}}}}
	without := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "cold"}}
	small := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "tiny"}, Status: corev1.NodeStatus{Images: []corev1.ContainerImage{
		{Names: []string{"docker.io/library/tiny:1"}, SizeBytes: 1 << 20}}}}
	s := &Scheduler{}
	idx := s.imagesOf([]*corev1.Node{withImage, without, small})
	pod := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Image: "app:1"}}}}
	warm, cold := imageScore(pod, withImage, idx), imageScore(pod, without, idx)
	if warm <= cold || cold != 0 {
		t.Errorf("score with the image %v, without %v", warm, cold)
	}
	tiny := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Image: "tiny:1"}}}}
	if got := imageScore(tiny, small, idx); got != 0 {
		t.Errorf("an image under the 23 MB threshold scored %v", got)
	}
}

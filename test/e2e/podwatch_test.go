package e2e

import (
	"context"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
)

// podWatch follows the pods of default that a label selector picks and,
// after each change (and once at the start), calls observe with all of
// them, one call at a time, until closed.
type podWatch struct {
	mu   sync.Mutex
	pods map[string]*corev1.Pod
	stop func()
	done chan struct{}
}

func followPods(t *testing.T, c kubernetes.Interface, selector string, observe func(pods map[string]*corev1.Pod)) *podWatch {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	list, err := c.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	w, err := c.CoreV1().Pods("default").Watch(ctx, metav1.ListOptions{LabelSelector: selector, ResourceVersion: list.ResourceVersion})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	pw := &podWatch{pods: map[string]*corev1.Pod{}, stop: cancel, done: make(chan struct{})}
	for i := range list.Items {
		pw.pods[list.Items[i].Name] = &list.Items[i]
	}
	observe(pw.pods)
	go func() {
		defer close(pw.done)
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			pw.mu.Lock()
			if ev.Type == watch.Deleted {
				delete(pw.pods, p.Name)
			} else {
				pw.pods[p.Name] = p
			}
			observe(pw.pods)
			pw.mu.Unlock()
		}
	}()
	t.Cleanup(pw.close)
	return pw
}

// close stops the watch; no observe call comes after it returns.
func (pw *podWatch) close() {
	pw.stop()
	<-pw.done
}

package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
)

// parallel runs f(i) for i in [0, n) on workers goroutines.
func parallel(n, workers int, f func(i int)) {
	var wg sync.WaitGroup
	next := make(chan int)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				f(i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

// startServerWith starts a server without agent or controllers (and with
// extra flags) on dataDir and port, and returns a client once it answers.
func startServerWith(b *testing.B, dataDir string, port int, extra ...string) (*proc, kubernetes.Interface) {
	p := &proc{dataDir: dataDir, port: port}
	args := append([]string{"server", "--data-dir", dataDir, "--bind-address", "127.0.0.1",
		"--https-listen-port", strconv.Itoa(port), "--disable-agent", "--disable-controller-manager"}, extra...)
	p.cmd = exec.Command(skiffBin(b), args...)
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(filepath.Join(dataDir, "kubeconfig.yaml")); err != nil {
			continue
		}
		c := p.client(b)
		if _, err := c.CoreV1().Namespaces().Get(context.Background(), "default", metav1.GetOptions{}); err == nil {
			return p, c
		}
	}
	p.stop()
	b.Fatal("server not up in 30s")
	return nil, nil
}

// BenchmarkSchedulerThroughput measures how many pods a second the
// scheduler places and binds on 5,000 nodes, as kube-scheduler's
// scheduler_perf "SchedulingBasic/5000Nodes_10000Pods" does: 5,000 Nodes
// (no agents behind them: the scheduler only reads their status) and
// 10,000 pods with requests are created with the scheduler off; the server
// is then restarted with it on, and a watch times the bindings, from the
// first to the last.
func BenchmarkSchedulerThroughput(b *testing.B) {
	const nodes, pods = 5000, 10000
	dataDir, port := b.TempDir(), freePort(b)
	p, c := startServerWith(b, dataDir, port, "--disable-scheduler")
	ctx := context.Background()
	capacity := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("32Gi"),
		corev1.ResourcePods: resource.MustParse("110")}
	parallel(nodes, 32, func(i int) {
		n, err := c.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("node-%d", i),
			Labels: map[string]string{"zone": fmt.Sprintf("z%d", i%3)}}}, metav1.CreateOptions{})
		if err != nil {
			b.Error(err)
			return
		}
		n.Status = corev1.NodeStatus{Capacity: capacity, Allocatable: capacity,
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}
		if _, err := c.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
			b.Error(err)
		}
	})
	parallel(pods, 32, func(i int) {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("pod-%d", i)}, Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "c", Image: "busybox", Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("64Mi")}}}}}}
		if _, err := c.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			b.Error(err)
		}
	})
	p.stop()
	if b.Failed() {
		return
	}
	b.ResetTimer()
	p, c = startServerWith(b, dataDir, port)
	defer p.stop()
	w, err := c.CoreV1().Pods("default").Watch(ctx, metav1.ListOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Stop()
	bound := map[string]bool{}
	var first, last time.Time
	timeout := time.After(5 * time.Minute)
	for len(bound) < pods {
		select {
		case ev := <-w.ResultChan():
			pod, ok := ev.Object.(*corev1.Pod)
			if !ok || ev.Type == watch.Deleted || pod.Spec.NodeName == "" || bound[pod.Name] {
				continue
			}
			if first.IsZero() {
				first = time.Now()
			}
			bound[pod.Name], last = true, time.Now()
		case <-timeout:
			b.Fatalf("%d of %d pods bound after 5 minutes", len(bound), pods)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(pods-1)/last.Sub(first).Seconds(), "pods/s")
	b.ReportMetric(last.Sub(first).Seconds(), "s-to-bind-all")
}

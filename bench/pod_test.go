package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-sh/skiff/test/testimage"
)

// startNode starts a server with its agent on a bridge and ranges of its
// own, and registers the clean-up (`skiff reset`).
func startNode(b *testing.B) (*proc, kubernetes.Interface) {
	if os.Geteuid() != 0 {
		b.Skip("the node agent needs root")
	}
	dataDir := b.TempDir()
	if err := testimage.Write(filepath.Join(dataDir, "agent", "images", "import")); err != nil {
		b.Fatal(err)
	}
	n := rand.IntN(200) + 20
	p := &proc{dataDir: dataDir, port: freePort(b)}
	p.cmd = exec.Command(skiffBin(b), "server", "--data-dir", dataDir, "--bind-address", "127.0.0.1",
		"--https-listen-port", strconv.Itoa(p.port), "--run-dir", b.TempDir(), "--bridge", fmt.Sprintf("skb%d", n),
		"--cluster-cidr", fmt.Sprintf("10.%d.0.0/16", n), "--service-cidr", fmt.Sprintf("172.%d.0.0/16", 16+n%16),
		"--node-name", "bench-node", "--kubelet-port", "0")
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		p.stop()
		exec.Command(skiffBin(b), "reset", "--data-dir", dataDir).Run()
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(dataDir, "kubeconfig.yaml")); err == nil {
			c := p.client(b)
			node, err := c.CoreV1().Nodes().Get(context.Background(), "bench-node", metav1.GetOptions{})
			if err == nil && node.Spec.PodCIDR != "" {
				return p, c
			}
		}
		if time.Now().After(deadline) {
			b.Fatal("node not registered in 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// runPods creates n pods at once and returns each one's time from its
// create call to the watch event that shows it Running.
func runPods(b *testing.B, c kubernetes.Interface, prefix string, n int) []time.Duration {
	ctx := context.Background()
	w, err := c.CoreV1().Pods("default").Watch(ctx, metav1.ListOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Stop()
	created := map[string]time.Time{}
	for i := range n {
		name := fmt.Sprintf("%s-%d", prefix, i)
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.PodSpec{NodeName: "bench-node",
			Containers: []corev1.Container{{Name: "main", Image: testimage.Ref, Command: []string{"sleep", "3600"}}}}}
		created[name] = time.Now()
		if _, err := c.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	var out []time.Duration
	timeout := time.After(5 * time.Minute)
	for len(out) < n {
		select {
		case ev := <-w.ResultChan():
			pod, ok := ev.Object.(*corev1.Pod)
			if !ok || ev.Type != watch.Modified || pod.Status.Phase != corev1.PodRunning {
				continue
			}
			if t, ok := created[pod.Name]; ok {
				out = append(out, time.Since(t))
				delete(created, pod.Name)
			}
		case <-timeout:
			b.Fatalf("%d of %d pods not Running after 5 minutes", len(created), n)
		}
	}
	return out
}

func deletePods(b *testing.B, c kubernetes.Interface) {
	ctx := context.Background()
	zero := int64(0)
	list, _ := c.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
	for _, p := range list.Items {
		c.CoreV1().Pods("default").Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
	}
	for range 600 {
		if list, _ := c.CoreV1().Pods("default").List(ctx, metav1.ListOptions{}); len(list.Items) == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.Fatal("pods not gone in 60s")
}

// podProcessesMemory sums the memory of the processes behind pods, shims
// (skiff-shim) and pause processes: resident (RSS, counting the pages they
// share, such as skiff-init's code, once per process) and proportional
// (PSS, shared pages split between their users: what they really cost).
func podProcessesMemory() (rssKB, pssKB float64, count int) {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		args := strings.Split(string(cmdline), "\x00")
		if len(args) == 0 || (args[0] != "skiff-shim" && args[0] != "/pause") {
			continue
		}
		rollup, _ := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
		for _, line := range strings.Split(string(rollup), "\n") {
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			v, _ := strconv.ParseFloat(f[1], 64)
			switch f[0] {
			case "Rss:":
				rssKB += v
				count++
			case "Pss:":
				pssKB += v
			}
		}
	}
	return rssKB, pssKB, count
}

// BenchmarkPodStartup measures create-to-Running latency (as a watch sees
// it) for 1, 10 and 100 pods created at once on one node with a local
// image, then the memory each running pod costs: its shim and pause
// processes, plus what the server (API, agent) grew by.
//
// A first pod warms the node up (its first sandbox and snapshot); the
// single-pod figure is then the median of 10 pods created one at a time.
func BenchmarkPodStartup(b *testing.B) {
	p, c := startNode(b)
	runPods(b, c, "warm", 1)
	deletePods(b, c)
	for range b.N {
		var single []time.Duration
		for i := range 10 {
			single = append(single, runPods(b, c, fmt.Sprintf("one%d", i), 1)...)
		}
		b.ReportMetric(ms(median(single)), "ms-p50-1-pod")
		b.ReportMetric(ms(percentile(single, 99)), "ms-p99-1-pod")
		deletePods(b, c)
		for _, n := range []int{10, 100} {
			idle := p.rssKB(b)
			lat := runPods(b, c, fmt.Sprintf("p%d", n), n)
			b.ReportMetric(ms(median(lat)), fmt.Sprintf("ms-p50-%d-pods", n))
			b.ReportMetric(ms(percentile(lat, 99)), fmt.Sprintf("ms-p99-%d-pods", n))
			if n == 100 {
				time.Sleep(2 * time.Second) // let the server settle
				rss, pss, procs := podProcessesMemory()
				grew := p.rssKB(b) - idle
				b.ReportMetric(rss/float64(n)/1024, "MiB-RSS-shims+pause/pod")
				b.ReportMetric(pss/float64(n)/1024, "MiB-PSS-shims+pause/pod")
				b.ReportMetric(grew/float64(n)/1024, "MiB-server/pod")
				b.ReportMetric(float64(procs), "processes")
			}
			deletePods(b, c)
		}
	}
}

// BenchmarkDeployment100 is the time from creating a Deployment of 100
// replicas (local image, one node) until a watch has seen all its pods
// Running: controllers, scheduler and agent together.
func BenchmarkDeployment100(b *testing.B) {
	_, c := startNode(b)
	ctx := context.Background()
	for i := range b.N {
		name := fmt.Sprintf("hundred-%d", i)
		w, err := c.CoreV1().Pods("default").Watch(ctx, metav1.ListOptions{LabelSelector: "app=" + name})
		if err != nil {
			b.Fatal(err)
		}
		replicas, grace := int32(100), int64(0)
		d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: appsv1.DeploymentSpec{
			Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec: corev1.PodSpec{TerminationGracePeriodSeconds: &grace,
					Containers: []corev1.Container{{Name: "main", Image: testimage.Ref, Command: []string{"sleep", "3600"}}}}}}}
		start := time.Now()
		if _, err := c.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		running := map[string]bool{}
		timeout := time.After(5 * time.Minute)
		for len(running) < 100 {
			select {
			case ev := <-w.ResultChan():
				if pod, ok := ev.Object.(*corev1.Pod); ok && pod.Status.Phase == corev1.PodRunning {
					running[pod.Name] = true
				}
			case <-timeout:
				b.Fatalf("%d of 100 pods Running after 5 minutes", len(running))
			}
		}
		b.ReportMetric(time.Since(start).Seconds(), "s-all-100-running")
		w.Stop()
		c.AppsV1().Deployments("default").Delete(ctx, name, metav1.DeleteOptions{})
		deletePods(b, c)
	}
}

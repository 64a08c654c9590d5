// Package bench measures skiff's API server: start-up to /readyz, idle
// memory, and create/get/list/watch latency and throughput with 10,000
// objects. Run with `make bench`; figures go to docs/benchmarks.md.
package bench

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// objects is how many ConfigMaps the throughput benchmarks create.
const objects = 10000

func skiffBin(b *testing.B) string {
	if bin := os.Getenv("SKIFF_BIN"); bin != "" {
		return bin
	}
	_, file, _, _ := runtime.Caller(0)
	bin := filepath.Join(filepath.Dir(file), "..", "bin", "skiff")
	if _, err := os.Stat(bin); err != nil {
		b.Fatalf("%s missing: run make build first", bin)
	}
	return bin
}

type proc struct {
	cmd     *exec.Cmd
	dataDir string
	port    int
}

func freePort(b *testing.B) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// start launches a server in a fresh data dir and returns once /readyz
// answers 200, with the time that took.
func start(b *testing.B) (*proc, time.Duration) {
	return launch(b, b.TempDir(), freePort(b))
}

// launch starts a server on dataDir and port and waits for /readyz.
func launch(b *testing.B, dataDir string, port int) (*proc, time.Duration) {
	p := &proc{dataDir: dataDir, port: port}
	p.cmd = exec.Command(skiffBin(b), "server", "--data-dir", p.dataDir, "--bind-address", "127.0.0.1",
		"--https-listen-port", strconv.Itoa(p.port), "--disable-agent")
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true}, Timeout: time.Second}
	begin := time.Now()
	if err := p.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	for time.Since(begin) < 30*time.Second {
		resp, err := hc.Get(fmt.Sprintf("https://127.0.0.1:%d/readyz", p.port))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p, time.Since(begin)
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	p.stop()
	b.Fatal("server not ready in 30s")
	return nil, 0
}

func (p *proc) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.cmd.Wait()
}

// rssKB reads the process's resident set size.
func (p *proc) rssKB(b *testing.B) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			v, _ := strconv.ParseFloat(f[1], 64)
			return v
		}
	}
	return 0
}

func (p *proc) client(b *testing.B) kubernetes.Interface {
	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(p.dataDir, "kubeconfig.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	cfg.QPS, cfg.Burst = -1, 0 // no client-side rate limit
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// BenchmarkStartToReady is the time from exec to /readyz answering 200 on a
// fresh data dir (CA, certificates and etcd created), then on a restart.
func BenchmarkStartToReady(b *testing.B) {
	var fresh, restart []time.Duration
	for range b.N {
		p, d := start(b)
		fresh = append(fresh, d)
		p.stop()
		p2, d2 := launch(b, p.dataDir, p.port)
		restart = append(restart, d2)
		p2.stop()
	}
	b.ReportMetric(ms(median(fresh)), "ms-fresh-start")
	b.ReportMetric(ms(median(restart)), "ms-restart")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkIdleRSS is the server's resident memory 5 s after it is ready.
func BenchmarkIdleRSS(b *testing.B) {
	var rss []float64
	for range b.N {
		p, _ := start(b)
		time.Sleep(5 * time.Second)
		rss = append(rss, p.rssKB(b)/1024)
		p.stop()
	}
	slices.Sort(rss)
	b.ReportMetric(rss[len(rss)/2], "MiB-idle-rss")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkObjects creates 10,000 ConfigMaps with 32 concurrent clients,
// gets each, lists them all, and measures how long a watcher takes to see
// each create.
func BenchmarkObjects(b *testing.B) {
	for range b.N {
		p, _ := start(b)
		c := p.client(b)
		ctx := context.Background()
		ns := "bench"
		if _, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		// The watcher records when each object's ADDED arrives.
		w, err := c.CoreV1().ConfigMaps(ns).Watch(ctx, metav1.ListOptions{ResourceVersion: "1"})
		if err != nil {
			b.Fatal(err)
		}
		var seenMu sync.Mutex
		seen := map[string]time.Time{}
		watchDone := make(chan struct{})
		go func() {
			defer close(watchDone)
			for ev := range w.ResultChan() {
				cm, ok := ev.Object.(*corev1.ConfigMap)
				if !ok {
					continue
				}
				seenMu.Lock()
				seen[cm.Name] = time.Now()
				n := len(seen)
				seenMu.Unlock()
				if n == objects {
					return
				}
			}
		}()

		created := make([]time.Time, objects)
		createLat := make([]time.Duration, objects)
		var next atomic.Int64
		var wg sync.WaitGroup
		begin := time.Now()
		for range 32 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1)) - 1
					if i >= objects {
						return
					}
					cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%05d", i), Labels: map[string]string{"bench": "yes"}},
						Data: map[string]string{"key": strings.Repeat("v", 256)}}
					t0 := time.Now()
					if _, err := c.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
						b.Error(err)
						return
					}
					created[i] = t0
					createLat[i] = time.Since(t0)
				}
			}()
		}
		wg.Wait()
		createElapsed := time.Since(begin)
		select {
		case <-watchDone:
		case <-time.After(60 * time.Second):
			b.Fatal("watch did not see every create")
		}
		w.Stop()
		var watchLat []time.Duration
		for i := range objects {
			watchLat = append(watchLat, seen[fmt.Sprintf("cm-%05d", i)].Sub(created[i]))
		}

		getLat := make([]time.Duration, 2000)
		for i := range getLat {
			t0 := time.Now()
			if _, err := c.CoreV1().ConfigMaps(ns).Get(ctx, fmt.Sprintf("cm-%05d", i*5), metav1.GetOptions{}); err != nil {
				b.Fatal(err)
			}
			getLat[i] = time.Since(t0)
		}
		var listLat []time.Duration
		for range 5 {
			t0 := time.Now()
			l, err := c.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				b.Fatal(err)
			}
			if len(l.Items) != objects {
				b.Fatalf("listed %d", len(l.Items))
			}
			listLat = append(listLat, time.Since(t0))
		}
		b.ReportMetric(float64(objects)/createElapsed.Seconds(), "creates/s")
		b.ReportMetric(ms(median(createLat)), "ms-create-p50")
		b.ReportMetric(ms(percentile(createLat, 99)), "ms-create-p99")
		b.ReportMetric(ms(median(getLat)), "ms-get-p50")
		b.ReportMetric(ms(percentile(getLat, 99)), "ms-get-p99")
		b.ReportMetric(ms(median(listLat)), "ms-list-10k")
		b.ReportMetric(ms(median(watchLat)), "ms-watch-p50")
		b.ReportMetric(ms(percentile(watchLat, 99)), "ms-watch-p99")
		b.ReportMetric(p.rssKB(b)/1024, "MiB-rss-10k")
		b.ReportMetric(0, "ns/op")
		p.stop()
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func median(ds []time.Duration) time.Duration { return percentile(ds, 50) }

func percentile(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := len(s) * p / 100
	if i >= len(s) {
		i = len(s) - 1
	}
	return s[i]
}

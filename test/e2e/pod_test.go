package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-sh/skiff/test/testimage"
)

// testImage is the image pods in these tests run (see package testimage),
// imported from the air-gap directory at start.
const testImage = testimage.Ref

func writeTestImage(t *testing.T, dir string) {
	t.Helper()
	if err := testimage.Write(dir); err != nil {
		t.Fatal(err)
	}
}

// startAgentServer starts a server with its node agent on a bridge, pod
// range and runtime directory of the test's own, and removes everything
// the agent made (containers, mounts, the bridge, routes) afterwards.
// prepare, when given, adds to the data dir before the server starts.
func startAgentServer(t *testing.T, prepare ...func(dataDir string)) (*server, kubernetes.Interface) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the node agent needs root (namespaces, cgroups, mounts, a bridge); CI runs as root, so it runs there")
	}
	dataDir := t.TempDir()
	writeTestImage(t, filepath.Join(dataDir, "agent", "images", "import"))
	for _, p := range prepare {
		p(dataDir)
	}
	n := rand.IntN(200) + 20
	runDir := t.TempDir()
	s := &server{t: t, dataDir: dataDir, port: freePort(t), args: []string{
		"--run-dir", runDir, "--bridge", fmt.Sprintf("skt%d", n),
		"--cluster-cidr", fmt.Sprintf("10.%d.0.0/16", n), "--service-cidr", fmt.Sprintf("172.%d.0.0/16", 16+n%16),
		"--node-name", "e2e-node", "--kubelet-port", "0",
	}}
	t.Cleanup(func() {
		s.stop()
		if out, err := runSkiff("reset", "--data-dir", dataDir); err != nil {
			t.Errorf("skiff reset: %v\n%s", err, out)
		}
		if t.Failed() {
			t.Logf("server log:\n%s", tail(s.log.String(), 80))
		}
	})
	startNoDisable(s)
	return s, s.client()
}

// waitPod waits until cond holds for the pod, returning the last one seen.
func waitPod(t *testing.T, c kubernetes.Interface, ns, name string, timeout time.Duration, what string, cond func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	var last *corev1.Pod
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		p, err := c.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err == nil {
			last = p
			if cond(p) {
				return p
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	var events []string
	if list, err := c.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{}); err == nil {
		for _, e := range list.Items {
			if e.InvolvedObject.Name == name {
				events = append(events, e.Reason+": "+e.Message)
			}
		}
	}
	t.Fatalf("pod %s/%s: %s not reached in %v; last status: %+v\nevents:\n%s", ns, name, what, timeout, last.Status, strings.Join(events, "\n"))
	return nil
}

func TestPodPhasesFollowExitCodes(t *testing.T) {
	_, c := startAgentServer(t)
	ctx := context.Background()
	mk := func(name, script string) {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.PodSpec{NodeName: "e2e-node", RestartPolicy: corev1.RestartPolicyNever,
				Containers: []corev1.Container{{Name: "main", Image: testImage, Command: []string{"sh", "-c", script}}}}}
		if _, err := c.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	mk("ok", "exit 0")
	mk("bad", "exit 3")
	ok := waitPod(t, c, "default", "ok", 60*time.Second, "Succeeded", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded })
	if term := ok.Status.ContainerStatuses[0].State.Terminated; term == nil || term.Reason != "Completed" {
		t.Errorf("ok: terminated = %+v, want reason Completed", term)
	}
	bad := waitPod(t, c, "default", "bad", 60*time.Second, "Failed", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
	if term := bad.Status.ContainerStatuses[0].State.Terminated; term == nil || term.ExitCode != 3 || term.Reason != "Error" {
		t.Errorf("bad: terminated = %+v, want exit code 3, reason Error", term)
	}
}

// criClient talks to the agent's CRI socket, as crictl does.
func criClient(t *testing.T, s *server) runtimeapi.RuntimeServiceClient {
	t.Helper()
	conn, err := grpc.NewClient("unix://"+filepath.Join(s.dataDir, "agent", "run", "cri.sock"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return runtimeapi.NewRuntimeServiceClient(conn)
}

// namespaces reads a process's namespace inodes by type.
func namespaces(t *testing.T, pid string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, ns := range []string{"net", "ipc", "uts", "mnt"} {
		link, err := os.Readlink("/proc/" + pid + "/ns/" + ns)
		if err != nil {
			t.Fatal(err)
		}
		out[ns] = link
	}
	return out
}

func TestPodContainersShareNetworkIPCUTSAndAnEmptyDir(t *testing.T) {
	s, c := startAgentServer(t)
	ctx := context.Background()
	shared := []corev1.VolumeMount{{Name: "shared", MountPath: "/shared"}}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "duo"},
		Spec: corev1.PodSpec{NodeName: "e2e-node",
			Volumes: []corev1.Volume{{Name: "shared", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
			Containers: []corev1.Container{
				{Name: "web", Image: testImage, VolumeMounts: shared, Command: []string{"sh", "-c",
					"mkdir -p /www && echo hello-from-web > /www/index.html && httpd -p 8080 -h /www && " +
						"until [ -s /shared/got ]; do sleep 0.1; done; echo read: $(cat /shared/got); sleep 3600"}},
				{Name: "fetch", Image: testImage, VolumeMounts: shared, Command: []string{"sh", "-c",
					"until wget -q -O /shared/got.tmp http://localhost:8080/; do sleep 0.1; done; mv /shared/got.tmp /shared/got; sleep 3600"}},
			}}}
	if _, err := c.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	running := waitPod(t, c, "default", "duo", 60*time.Second, "Running and Ready", func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodRunning && podReady(p)
	})
	if running.Status.PodIP == "" || !strings.HasPrefix(running.Status.PodIP, "10.") {
		t.Errorf("podIP = %q, want an address of the pod range", running.Status.PodIP)
	}
	// The web container says what the fetcher wrote into the shared
	// emptyDir: read its CRI log file on the node.
	logFile := filepath.Join(s.dataDir, "agent", "logs", "default_duo_"+string(running.UID), "web", "0.log")
	eventually(t, 30*time.Second, func() error {
		data, _ := os.ReadFile(logFile)
		if !strings.Contains(string(data), "stdout F read: hello-from-web") {
			return errorf("web log: %q", data)
		}
		return nil
	})
	// Namespaces, from the host: every container and the pause process
	// share net, ipc and uts; each container has its own mount namespace.
	cri := criClient(t, s)
	sandboxes, err := cri.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil || len(sandboxes.Items) != 1 {
		t.Fatalf("sandboxes: %v %v", sandboxes, err)
	}
	sb, err := cri.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: sandboxes.Items[0].Id, Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	pause := namespaces(t, sb.Info["pid"])
	list, err := cri.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
	if err != nil || len(list.Containers) != 2 {
		t.Fatalf("containers: %v %v", list, err)
	}
	mnts := map[string]bool{pause["mnt"]: true}
	for _, ctr := range list.Containers {
		st, err := cri.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: ctr.Id, Verbose: true})
		if err != nil {
			t.Fatal(err)
		}
		ns := namespaces(t, st.Info["pid"])
		for _, kind := range []string{"net", "ipc", "uts"} {
			if ns[kind] != pause[kind] {
				t.Errorf("container %s: %s namespace %s, pause has %s", ctr.Metadata.Name, kind, ns[kind], pause[kind])
			}
		}
		if mnts[ns["mnt"]] {
			t.Errorf("container %s shares a mount namespace (%s)", ctr.Metadata.Name, ns["mnt"])
		}
		mnts[ns["mnt"]] = true
	}
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// startAgent runs `skiff agent` joined to s as node name, and cleans up
// after it as startAgentServer does. It returns the agent's data dir.
func startAgent(t *testing.T, s *server, name, token string) string {
	t.Helper()
	dataDir := t.TempDir()
	writeTestImage(t, filepath.Join(dataDir, "agent", "images", "import"))
	var log bytes.Buffer
	cmd := exec.Command(skiffBin, "agent", "--server", s.url(), "--token", token, "--data-dir", dataDir,
		"--node-name", name, "--run-dir", t.TempDir(), "--bridge", "skta"+strconv.Itoa(s.port%1000), "--kubelet-port", "0")
	cmd.Stdout, cmd.Stderr = &log, &log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if out, err := runSkiff("reset", "--data-dir", dataDir); err != nil {
			t.Errorf("skiff reset of the agent: %v\n%s", err, out)
		}
		if t.Failed() {
			t.Logf("agent log:\n%s", tail(log.String(), 60))
		}
	})
	return dataDir
}

func TestAgentJoinsWithTheTokenAndRunsPods(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the node agent needs root (namespaces, cgroups, mounts, a bridge); CI runs as root, so it runs there")
	}
	s := startServer(t, withArgs("--cluster-cidr", "10.251.0.0/16", "--service-cidr", "172.31.0.0/16"))
	c := s.client()
	// A wrong token is refused.
	bad := exec.Command(skiffBin, "agent", "--server", s.url(), "--token", "nope", "--data-dir", t.TempDir(), "--node-name", "intruder")
	if out, err := bad.CombinedOutput(); err == nil || !strings.Contains(string(out), "join") {
		t.Errorf("agent with a wrong token: %v\n%s", err, out)
	}
	token, err := os.ReadFile(filepath.Join(s.dataDir, "server", "node-token"))
	if err != nil {
		t.Fatal(err)
	}
	startAgent(t, s, "remote-1", strings.TrimSpace(string(token)))
	var node *corev1.Node
	eventually(t, 30*time.Second, func() error {
		node, err = c.CoreV1().Nodes().Get(context.Background(), "remote-1", metav1.GetOptions{})
		if err != nil || node.Spec.PodCIDR == "" {
			return errorf("node: %v", err)
		}
		return nil
	})
	if !strings.HasPrefix(node.Spec.PodCIDR, "10.251.") {
		t.Errorf("podCIDR %s is not in the cluster CIDR", node.Spec.PodCIDR)
	}
	ready := false
	for _, cond := range node.Status.Conditions {
		ready = ready || cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue
	}
	if !ready || node.Status.NodeInfo.KubeletVersion == "" || node.Status.Capacity.Cpu().IsZero() {
		t.Errorf("node status: %+v", node.Status)
	}
	pod := shPod("far", "echo from-remote; sleep 3600", corev1.RestartPolicyAlways)
	pod.Spec.NodeName = "remote-1"
	createPod(t, c, pod)
	waitPod(t, c, "default", "far", 30*time.Second, "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	// Logs come from the agent's own kubelet API, with its own certificate.
	eventually(t, 10*time.Second, func() error {
		if out := s.kubectl("logs", "far"); out.err != nil || out.stdout != "from-remote\n" {
			return errorf("kubectl logs: %s", out)
		}
		return nil
	})
}

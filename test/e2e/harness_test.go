// Package e2e starts the real skiff binary and drives it with the embedded
// kubectl and with client-go, as a user would.
package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// skiffBin is the binary under test, built once by TestMain.
var skiffBin string

// cacheDir is shared by every kubectl run, so that skiff unpacks its
// kubectl once for the whole package.
var cacheDir string

func TestMain(m *testing.M) {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	if bin := os.Getenv("SKIFF_BIN"); bin != "" {
		skiffBin = bin
	} else {
		cmd := exec.Command("make", "-s", "build")
		cmd.Dir = root
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "make build:", err)
			os.Exit(1)
		}
		skiffBin = filepath.Join(root, "bin", "skiff")
	}
	cacheDir, _ = os.MkdirTemp("", "skiff-e2e-cache")
	code := m.Run()
	os.RemoveAll(cacheDir)
	os.Exit(code)
}

// server is one running `skiff server` process.
type server struct {
	t       *testing.T
	dataDir string
	port    int
	args    []string
	cmd     *exec.Cmd
	log     *bytes.Buffer
	exited  chan struct{}
	// withAgent runs the server without --disable-agent.
	withAgent bool
}

type serverOption func(*server)

func withArgs(args ...string) serverOption {
	return func(s *server) { s.args = append(s.args, args...) }
}

// withControlPlaneOnly runs the scheduler and controllers but no agent:
// the nodes are agents the test starts.
func withControlPlaneOnly() serverOption {
	return func(s *server) {
		s.withAgent = true
		s.args = append(s.args, "--disable-agent")
	}
}

func withDataDir(dir string) serverOption {
	return func(s *server) { s.dataDir = dir }
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startServer starts a server in a fresh data dir and waits until it is ready.
func startServer(t *testing.T, opts ...serverOption) *server {
	t.Helper()
	s := &server{t: t}
	for _, o := range opts {
		o(s)
	}
	if s.dataDir == "" {
		s.dataDir = t.TempDir()
	}
	s.port = freePort(t)
	s.start()
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			t.Logf("server log:\n%s", tail(s.log.String(), 60))
		}
	})
	return s
}

func tail(s string, lines int) string {
	parts := strings.Split(s, "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}

// startNoDisable starts a server with its node agent enabled.
func startNoDisable(s *server) {
	s.withAgent = true
	s.start()
}

func (s *server) start() {
	s.t.Helper()
	args := []string{"server", "--data-dir", s.dataDir, "--bind-address", "127.0.0.1",
		"--https-listen-port", strconv.Itoa(s.port)}
	if !s.withAgent {
		// The API's own tests bind pods themselves and watch every change
		// of them and of workloads: no agent, scheduler or controllers to
		// race them.
		args = append(args, "--disable-agent", "--disable-scheduler", "--disable-controller-manager")
	}
	args = append(args, s.args...)
	s.cmd = exec.Command(skiffBin, args...)
	if s.log == nil {
		s.log = &bytes.Buffer{}
	}
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.exited = make(chan struct{})
	go func() { s.cmd.Wait(); close(s.exited) }()
	s.waitReady(60 * time.Second)
}

func (s *server) waitReady(timeout time.Duration) {
	s.t.Helper()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			s.t.Fatalf("server exited early:\n%s", tail(s.log.String(), 40))
		default:
		}
		resp, err := client.Get(s.url() + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("server not ready after %v:\n%s", timeout, tail(s.log.String(), 40))
}

func (s *server) url() string { return fmt.Sprintf("https://127.0.0.1:%d", s.port) }

func (s *server) kubeconfig() string { return filepath.Join(s.dataDir, "kubeconfig.yaml") }

// stop sends SIGTERM and waits for a clean exit.
func (s *server) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.exited:
		return
	default:
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(20 * time.Second):
		s.t.Errorf("server did not stop within 20s of SIGTERM")
		s.cmd.Process.Kill()
		<-s.exited
	}
}

// kill stops the server with SIGKILL.
func (s *server) kill() {
	s.cmd.Process.Kill()
	<-s.exited
}

func (s *server) restart() {
	s.t.Helper()
	s.start()
}

func (s *server) restConfig() *rest.Config {
	s.t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", s.kubeconfig())
	if err != nil {
		s.t.Fatal(err)
	}
	cfg.QPS, cfg.Burst = 1000, 2000
	return cfg
}

func (s *server) client() kubernetes.Interface {
	s.t.Helper()
	c, err := kubernetes.NewForConfig(s.restConfig())
	if err != nil {
		s.t.Fatal(err)
	}
	return c
}

// kubectlResult is what one kubectl run printed.
type kubectlResult struct {
	stdout, stderr string
	err            error
}

func (r kubectlResult) String() string {
	return fmt.Sprintf("err=%v\nstdout:\n%s\nstderr:\n%s", r.err, r.stdout, r.stderr)
}

// kubectl runs the embedded kubectl against the server.
func (s *server) kubectl(args ...string) kubectlResult {
	return s.kubectlIn("", nil, args...)
}

func (s *server) kubectlIn(stdin string, env []string, args ...string) kubectlResult {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, skiffBin, append([]string{"kubectl"}, args...)...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+s.kubeconfig(), "HOME="+s.dataDir, "KUBECACHEDIR="+filepath.Join(s.dataDir, ".kube-cache"), "XDG_CACHE_HOME="+cacheDir)
	cmd.Env = append(cmd.Env, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	err := cmd.Run()
	return kubectlResult{stdout: out.String(), stderr: errb.String(), err: err}
}

// mustKubectl runs kubectl and fails the test if it fails.
func (s *server) mustKubectl(args ...string) string {
	s.t.Helper()
	r := s.kubectl(args...)
	if r.err != nil {
		s.t.Fatalf("kubectl %s: %s", strings.Join(args, " "), r)
	}
	return r.stdout
}

// eventually retries f until it returns nil or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = f(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("condition not met after %v: %v", timeout, err)
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }

// runSkiff runs the skiff binary with args and returns its combined output.
func runSkiff(args ...string) (string, error) {
	out, err := exec.Command(skiffBin, args...).CombinedOutput()
	return string(out), err
}

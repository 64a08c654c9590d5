package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
)

// kubectlCmd is kubectl against s, for commands that stream.
func (s *server) kubectlCmd(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, skiffBin, append([]string{"kubectl"}, args...)...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+s.kubeconfig(), "HOME="+s.dataDir,
		"KUBECACHEDIR="+filepath.Join(s.dataDir, ".kube-cache"), "XDG_CACHE_HOME="+cacheDir)
	return cmd
}

// openPTY returns a pseudo-terminal's master and the path of its slave.
func openPTY(t *testing.T) (*os.File, string) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	unlock := 0
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, master.Fd(), unix.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		t.Fatal(e)
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	return master, "/dev/pts/" + strconv.Itoa(n)
}

func TestKubectlLogsExecAndPortForward(t *testing.T) {
	s, c := startAgentServer(t)
	web := shPod("web", "echo line1; echo line2 >&2; mkdir -p /www; echo hello-pf > /www/index.html; httpd -p 8080 -h /www; "+
		"i=0; while true; do sleep 0.3; i=$((i+1)); echo tick$i; done", corev1.RestartPolicyAlways)
	createPod(t, c, web)
	createPod(t, c, shPod("crashy", "echo run-at-$(date +%s%N); sleep 0.5; exit 1", corev1.RestartPolicyAlways))
	talk := shPod("talk", "while read line; do echo got-$line; done; echo stdin-closed", corev1.RestartPolicyNever)
	talk.Spec.Containers[0].Stdin, talk.Spec.Containers[0].StdinOnce = true, true
	createPod(t, c, talk)
	waitPod(t, c, "default", "web", 30*time.Second, "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })

	// logs, both streams in order, and -f that follows new lines.
	// stdout and stderr come through two pipes, so their relative order is
	// not kept (as with containerd); each stream's own order is.
	out := s.mustKubectl("logs", "web")
	if !strings.Contains(out, "line1\n") || !strings.Contains(out, "line2\n") {
		t.Errorf("kubectl logs web = %q", out)
	}
	eventually(t, 10*time.Second, func() error {
		if out := s.mustKubectl("logs", "web", "--tail=1", "--timestamps"); strings.Count(out, "\n") != 1 || !strings.Contains(out, "Z tick") {
			return errorf("kubectl logs --tail=1 --timestamps = %q", out)
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	follow := s.kubectlCmd(ctx, "logs", "-f", "web")
	stdout, _ := follow.StdoutPipe()
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() && len(seen) < 3 {
		if strings.HasPrefix(sc.Text(), "tick") {
			seen[sc.Text()] = true
		}
	}
	follow.Process.Kill()
	follow.Wait()
	if len(seen) < 3 {
		t.Errorf("kubectl logs -f saw %v", seen)
	}

	// --previous shows the instance before the current one.
	waitPod(t, c, "default", "crashy", 30*time.Second, "a restart", func(p *corev1.Pod) bool {
		return len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].RestartCount >= 1
	})
	prev := s.mustKubectl("logs", "crashy", "--previous")
	if !strings.HasPrefix(prev, "run-at-") {
		t.Errorf("kubectl logs --previous = %q", prev)
	}

	// attach: stdin reaches the container, its output comes back, and with
	// stdinOnce the container's stdin closes when kubectl's does.
	waitPod(t, c, "default", "talk", 30*time.Second, "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	if r := s.kubectlIn("ping\n", nil, "attach", "-i", "talk"); r.err != nil || !strings.Contains(r.stdout, "got-ping\n") {
		t.Errorf("kubectl attach -i: %s", r)
	}
	waitPod(t, c, "default", "talk", 30*time.Second, "Succeeded once its stdin closed", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded })
	if out := s.mustKubectl("logs", "talk"); out != "got-ping\nstdin-closed\n" {
		t.Errorf("logs of the attached pod: %q", out)
	}

	// exec: output, a non-zero exit, stdin.
	if out := s.mustKubectl("exec", "web", "--", "cat", "/www/index.html"); out != "hello-pf\n" {
		t.Errorf("kubectl exec cat = %q", out)
	}
	r := s.kubectl("exec", "web", "--", "sh", "-c", "echo oops >&2; exit 3")
	var ee *exec.ExitError
	if !asExit(r.err, &ee) || ee.ExitCode() != 3 || !strings.Contains(r.stderr, "command terminated with exit code 3") || !strings.Contains(r.stderr, "oops") {
		t.Errorf("kubectl exec exit 3: %s", r)
	}
	if r := s.kubectlIn("piped-in\n", nil, "exec", "-i", "web", "--", "cat"); r.err != nil || r.stdout != "piped-in\n" {
		t.Errorf("kubectl exec -i cat: %s", r)
	}

	// exec -it under a terminal.
	master, slave := openPTY(t)
	defer master.Close()
	tty, err := os.OpenFile(slave, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	it := s.kubectlCmd(ctx, "exec", "-it", "web", "--", "sh")
	it.Stdin, it.Stdout, it.Stderr = tty, tty, tty
	it.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if err := it.Start(); err != nil {
		t.Fatal(err)
	}
	tty.Close()
	fmt.Fprintf(master, "echo tty-$((40+2)); [ -t 0 ] && echo is-a-tty\n")
	// The terminal echoes the typed line first; the shell's answer follows.
	got := readUntil(master, "tty-42\r\nis-a-tty\r\n", 20*time.Second)
	if !strings.Contains(got, "tty-42\r\nis-a-tty\r\n") {
		more := readUntil(master, "never", 2*time.Second)
		t.Fatalf("exec -it output %q then %q (kubectl: %v)", got, more, it.Wait())
	}
	fmt.Fprintf(master, "exit 7\n")
	err = it.Wait()
	if !asExit(err, &ee) || ee.ExitCode() != 7 {
		t.Errorf("exec -it exit: %v", err)
	}

	// port-forward to the web server.
	port := freePort(t)
	pf := s.kubectlCmd(ctx, "port-forward", "pod/web", fmt.Sprintf("%d:8080", port))
	pfOut, _ := pf.StdoutPipe()
	if err := pf.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { pf.Process.Kill(); pf.Wait() }()
	bufio.NewReader(pfOut).ReadString('\n') // "Forwarding from ..."
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
	if err != nil {
		t.Fatalf("through port-forward: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "hello-pf\n" {
		t.Errorf("through port-forward: %q", body)
	}
}

func asExit(err error, ee **exec.ExitError) bool {
	e, ok := err.(*exec.ExitError)
	*ee = e
	return ok
}

// readUntil reads f until want appears or the time is up.
func readUntil(f *os.File, want string, d time.Duration) string {
	f.SetReadDeadline(time.Now().Add(d))
	var got []byte
	buf := make([]byte, 4096)
	for !strings.Contains(string(got), want) {
		n, err := f.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			break
		}
	}
	return string(got)
}

func TestCrictlListsPodsAndContainersAndExecs(t *testing.T) {
	_, file, _, _ := goruntime.Caller(0)
	crictl := filepath.Join(filepath.Dir(file), "..", "..", "bin", "crictl")
	if _, err := os.Stat(crictl); err != nil {
		t.Fatalf("crictl is missing (make deps builds it): %v", err)
	}
	s, c := startAgentServer(t)
	createPod(t, c, shPod("seen", "sleep 3600", corev1.RestartPolicyAlways))
	p := waitPod(t, c, "default", "seen", 30*time.Second, "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(crictl, append([]string{"--runtime-endpoint", "unix://" + filepath.Join(s.dataDir, "agent", "run", "cri.sock"),
			"--image-endpoint", "unix://" + filepath.Join(s.dataDir, "agent", "run", "cri.sock"), "--timeout", "10s"}, args...)...)
		var stderr strings.Builder
		cmd.Stderr = &stderr // crictl warns there when it has no config file
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("crictl %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
		}
		return string(out)
	}
	if out := run("pods"); !strings.Contains(out, "seen") || !strings.Contains(out, "Ready") {
		t.Errorf("crictl pods:\n%s", out)
	}
	out := run("ps")
	if !strings.Contains(out, "main") || !strings.Contains(out, "Running") {
		t.Errorf("crictl ps:\n%s", out)
	}
	if out := run("images"); !strings.Contains(out, "skiff.test/busybox") {
		t.Errorf("crictl images:\n%s", out)
	}
	id := strings.TrimPrefix(p.Status.ContainerStatuses[0].ContainerID, "skiff://")
	if out := run("exec", id[:12], "sh", "-c", "echo in-$(hostname)"); out != "in-seen\n" {
		t.Errorf("crictl exec: %q", out)
	}
}

func TestContainerLogsAreRotatedPastTenMegabytes(t *testing.T) {
	s, c := startAgentServer(t)
	createPod(t, c, shPod("chatty", "head -c 12000000 /dev/zero | tr '\\0' x | fold -w 999; while true; do echo after-rotation; sleep 0.2; done", corev1.RestartPolicyAlways))
	p := waitPod(t, c, "default", "chatty", 30*time.Second, "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	dir := filepath.Join(s.dataDir, "agent", "logs", "default_chatty_"+string(p.UID), "main")
	eventually(t, 40*time.Second, func() error {
		files, _ := filepath.Glob(filepath.Join(dir, "0.log.*"))
		if len(files) == 0 {
			return errorf("no rotated log in %s", dir)
		}
		return nil
	})
	eventually(t, 10*time.Second, func() error {
		fi, err := os.Stat(filepath.Join(dir, "0.log"))
		if err != nil || fi.Size() > 10<<20 {
			return errorf("current log: %v %v", fi, err)
		}
		if out := s.mustKubectl("logs", "chatty", "--tail=1"); out != "after-rotation\n" {
			return errorf("kubectl logs after rotation: %q", out)
		}
		return nil
	})
}

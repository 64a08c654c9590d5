package runtime_test

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/skiff-sh/skiff/internal/runtime/nsinit"
)

func TestExecSeesContainerFilesystemPidNamespaceAndCgroup(t *testing.T) {
	e := newEnv(t)
	b := e.bundle(sh("echo marker > /tmp/inside; sleep 100"))
	e.must("create", "-b", b, "ex")
	e.must("start", "ex")
	st := e.waitStatus("ex", "running")
	time.Sleep(100 * time.Millisecond)
	out := e.must("exec", "ex", "sh", "-c", "cat /tmp/inside; ps -o comm | grep -c sleep; cat /proc/1/cmdline | tr '\\0' ' '; echo; cat /proc/self/cgroup | grep -c ':/$'")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 4 || lines[0] != "marker" {
		t.Fatalf("exec does not see the container's filesystem:\n%s", out)
	}
	if lines[1] != "1" || strings.TrimSpace(lines[2]) != "sleep 100" {
		t.Errorf("exec is not in the container's pid namespace:\n%s", out)
	}
	// In the container's cgroup namespace its cgroup is the root.
	if lines[3] == "0" {
		t.Errorf("exec is not in the container's cgroup:\n%s", out)
	}
	pids := e.must("ps", "--format", "json", "ex")
	if !strings.Contains(pids, fmt.Sprint(st.Pid)) {
		t.Errorf("ps lists %s; want the container's init %d", pids, st.Pid)
	}
	if r := e.run("exec", "ex", "sh", "-c", "exit 5"); r.code != 5 {
		t.Errorf("exec exit code = %d, want 5", r.code)
	}
}

func TestExecWithTTYGetsATerminal(t *testing.T) {
	e := newEnv(t)
	e.must("create", "-b", e.bundle(sh("sleep 100")), "tty")
	e.must("start", "tty")
	e.waitStatus("tty", "running")
	out := e.must("exec", "-t", "tty", "sh", "-c", "test -t 0 && test -t 1 && echo is-a-tty; tty")
	if !strings.Contains(out, "is-a-tty") || !strings.Contains(out, "/dev/pts/") {
		t.Errorf("exec -t output:\n%q", out)
	}
}

func TestCreateWithConsoleSocketHandsOverTheTerminal(t *testing.T) {
	e := newEnv(t)
	sock := filepath.Join(t.TempDir(), "console.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	masters := make(chan *os.File, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		f, _ := c.(*net.UnixConn).File()
		c.Close()
		m, err := nsinit.RecvConsole(f)
		f.Close()
		if err == nil {
			masters <- m
		}
	}()
	b := e.bundle(func(s *specs.Spec) {
		s.Process.Terminal = true
		s.Process.Args = []string{"sh", "-c", "tty; test -c /dev/console && echo done; sleep 100"}
	})
	e.must("create", "--console-socket", sock, "-b", b, "con")
	var master *os.File
	select {
	case master = <-masters:
	case <-time.After(10 * time.Second):
		t.Fatal("no terminal received on the console socket")
	}
	defer master.Close()
	e.must("start", "con")
	r := bufio.NewReader(master)
	var got []string
	for len(got) < 2 {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("read terminal: %v (got %q)", err, got)
		}
		got = append(got, strings.TrimSpace(line))
	}
	if !strings.HasPrefix(got[0], "/dev/pts/") || got[1] != "done" {
		t.Errorf("terminal output %q", got)
	}
	if r := e.run("create", "-b", e.bundle(func(s *specs.Spec) { s.Process.Terminal = true }), "noconsole"); r.code == 0 || !strings.Contains(r.stderr, "console-socket") {
		t.Errorf("terminal without --console-socket: %d %q", r.code, r.stderr)
	}
}

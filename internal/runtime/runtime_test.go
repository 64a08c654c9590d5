package runtime_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/skiff-sh/skiff/internal/runtime"
)

func TestContainerIsIsolated(t *testing.T) {
	e := newEnv(t)
	b := e.bundle(func(s *specs.Spec) {
		s.Hostname = "boxed"
		s.Process.Args = []string{"sh", "-c", "echo pid=$$; hostname; ps -o pid,comm | wc -l; ls /sys/class/net; grep -c ' / ' /proc/self/mountinfo; cat /proc/self/mountinfo"}
	})
	out := e.must("run", "-b", b, "iso")
	lines := strings.Split(out, "\n")
	if lines[0] != "pid=1" {
		t.Errorf("the app is not PID 1: %q", lines[0])
	}
	if lines[1] != "boxed" {
		t.Errorf("hostname = %q", lines[1])
	}
	// ps prints a header, the shell, ps itself and wc.
	if n, _ := strconv.Atoi(strings.TrimSpace(lines[2])); n > 4 {
		t.Errorf("ps shows %d lines: the host's processes are visible", n)
	}
	if strings.TrimSpace(lines[3]) != "lo" {
		t.Errorf("network interfaces: %q, want only lo", lines[3])
	}
	if strings.Contains(out, "/work") || strings.Contains(out, " /boot") {
		t.Errorf("host mounts visible:\n%s", out)
	}
}

// A foreground run is the container's parent, as runc's is: the container
// shows as running to other commands, signals to run reach it, and run
// passes its exit code through and leaves nothing behind.
func TestRunIsTheContainersParent(t *testing.T) {
	e := newEnv(t)
	var cgPath string
	b := e.bundle(func(s *specs.Spec) {
		sh("trap 'exit 42' TERM; while true; do sleep 0.1; done")(s)
		cgPath = s.Linux.CgroupsPath
	})
	cmd := exec.Command(binary, "--root", e.root, "run", "-b", b, "fg")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var st runtime.State
	for deadline := time.Now().Add(20 * time.Second); st.Status != "running"; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("run's container never showed as running: %+v", st)
		}
		if r := e.run("state", "fg"); r.code == 0 {
			st = runtime.State{}
			json.Unmarshal([]byte(r.stdout), &st)
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", st.Pid))
	if err != nil {
		t.Fatal(err)
	}
	// Field 4 of /proc/PID/stat, after the command name in parentheses.
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	if fields[1] != strconv.Itoa(cmd.Process.Pid) {
		t.Errorf("the container's parent is %s, want run (%d)", fields[1], cmd.Process.Pid)
	}
	time.Sleep(200 * time.Millisecond) // let the shell install its trap
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("run did not end after SIGTERM")
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 42 {
		t.Errorf("run ended with %v, want exit code 42 from the trap", err)
	}
	if out := e.must("list", "-q"); strings.TrimSpace(out) != "" {
		t.Errorf("containers left after run: %q", out)
	}
	if _, err := os.Stat(cgroupDir("pids", cgPath)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("cgroup left after run: %v", err)
	}
}

func TestExitCodesAndSignalsAreReported(t *testing.T) {
	e := newEnv(t)
	r := e.run("run", "-b", e.bundle(sh("exit 3")), "code")
	if r.code != 3 {
		t.Errorf("run exit code = %d, want 3 (%s)", r.code, r.stderr)
	}
	b := e.bundle(sh("trap 'exit 42' TERM; while true; do sleep 0.1; done"))
	e.must("create", "-b", b, "sig")
	if st := e.state("sig"); st.Status != "created" || st.Pid == 0 {
		t.Fatalf("after create: %+v", st)
	}
	e.must("start", "sig")
	e.waitStatus("sig", "running")
	time.Sleep(200 * time.Millisecond) // let the shell install its trap
	e.must("kill", "sig", "TERM")
	st := e.waitStatus("sig", "stopped")
	if st.Exit == nil || st.Exit.Code != 42 {
		t.Errorf("exit after SIGTERM trap: %+v", st.Exit)
	}
	e.must("delete", "sig")

	e.must("create", "-b", e.bundle(sh("sleep 100")), "killed")
	e.must("start", "killed")
	e.must("kill", "killed", "KILL")
	st = e.waitStatus("killed", "stopped")
	if st.Exit == nil || st.Exit.Signal != 9 || st.Exit.Code != 137 {
		t.Errorf("exit after SIGKILL: %+v", st.Exit)
	}
}

func cgroupDir(controller, path string) string {
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		return filepath.Join("/sys/fs/cgroup", path)
	}
	return filepath.Join("/sys/fs/cgroup", controller, path)
}

func TestDeleteLeavesNoProcessesMountsOrCgroups(t *testing.T) {
	e := newEnv(t)
	var cgPath string
	b := e.bundle(func(s *specs.Spec) {
		s.Process.Args = []string{"sh", "-c", "sleep 100 & sleep 100"}
		cgPath = s.Linux.CgroupsPath
	})
	e.must("create", "-b", b, "gone")
	e.must("start", "gone")
	st := e.waitStatus("gone", "running")
	if _, err := os.Stat(cgroupDir("memory", cgPath)); err != nil {
		t.Fatalf("no cgroup while running: %v", err)
	}
	if r := e.run("delete", "gone"); r.code == 0 {
		t.Fatal("delete of a running container without --force succeeded")
	}
	e.must("delete", "--force", "gone")
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", st.Pid)); err == nil {
		t.Errorf("process %d still exists", st.Pid)
	}
	for _, c := range []string{"memory", "pids", "cpu"} {
		if _, err := os.Stat(cgroupDir(c, cgPath)); err == nil {
			t.Errorf("%s cgroup %s still exists", c, cgPath)
		}
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mounts), filepath.Join(b, "rootfs")) {
		t.Errorf("rootfs still mounted on the host")
	}
	if _, err := os.Stat(filepath.Join(e.root, "gone")); err == nil {
		t.Errorf("state dir left behind")
	}
}

func TestMemoryLimitOOMKillIsReported(t *testing.T) {
	e := newEnv(t)
	limit := int64(32 << 20)
	b := e.bundle(func(s *specs.Spec) {
		// Fill a tmpfs-backed /dev/shm past the limit: the kernel must kill.
		s.Process.Args = []string{"sh", "-c", "dd if=/dev/zero of=/dev/shm/fill bs=1M count=64; tail /dev/zero"}
		for i := range s.Mounts {
			if s.Mounts[i].Destination == "/dev/shm" {
				s.Mounts[i].Options = []string{"nosuid", "noexec", "nodev", "mode=1777", "size=128m"}
			}
		}
		s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit, Swap: &limit}
	})
	r := e.run("run", "--keep", "-b", b, "oom")
	st := e.state("oom")
	if st.Exit == nil || !st.Exit.OOMKilled {
		t.Errorf("not reported as OOM-killed: exit %+v (run code %d)", st.Exit, r.code)
	}
	if st.Exit != nil && st.Exit.Signal != 9 {
		t.Errorf("OOM kill signal = %d, want 9", st.Exit.Signal)
	}
	e.must("delete", "oom")
}

func TestForkBombStopsAtPidsLimit(t *testing.T) {
	e := newEnv(t)
	var cgPath string
	b := e.bundle(func(s *specs.Spec) {
		s.Process.Args = []string{"sh", "-c", "i=0; while [ $i -lt 40 ]; do sleep 100 & i=$((i+1)); done 2>/dev/null; wait"}
		s.Linux.Resources.Pids = &specs.LinuxPids{Limit: ptr(int64(10))}
		cgPath = s.Linux.CgroupsPath
	})
	e.must("create", "-b", b, "forks")
	e.must("start", "forks")
	dir := cgroupDir("pids", cgPath)
	read := func(f string) string { d, _ := os.ReadFile(filepath.Join(dir, f)); return strings.TrimSpace(string(d)) }
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(read("pids.events"), "max") || strings.HasSuffix(read("pids.events"), " 0") {
		if time.Now().After(deadline) {
			t.Fatalf("fork bomb never hit the limit: pids.current %s, pids.events %q", read("pids.current"), read("pids.events"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n, _ := strconv.Atoi(read("pids.current")); n > 10 {
		t.Errorf("pids.current = %d past pids.max 10", n)
	}
	e.must("delete", "--force", "forks")
}

func ptr[T any](v T) *T { return &v }

func TestCPUQuotaThrottlesABusyLoop(t *testing.T) {
	e := newEnv(t)
	var cgPath string
	b := e.bundle(func(s *specs.Spec) {
		s.Process.Args = []string{"sh", "-c", "while true; do :; done"}
		quota, period := int64(20000), uint64(100000)
		s.Linux.Resources.CPU = &specs.LinuxCPU{Quota: &quota, Period: &period}
		cgPath = s.Linux.CgroupsPath
	})
	e.must("create", "-b", b, "busy")
	e.must("start", "busy")
	time.Sleep(1 * time.Second)
	data, err := os.ReadFile(filepath.Join(cgroupDir("cpu", cgPath), "cpu.stat"))
	if err != nil {
		t.Fatal(err)
	}
	throttled := 0
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) == 2 && (f[0] == "nr_throttled") {
			throttled, _ = strconv.Atoi(f[1])
		}
	}
	if throttled == 0 {
		t.Errorf("a 0.2-CPU quota did not throttle a busy loop:\n%s", data)
	}
	e.must("delete", "--force", "busy")
}

func TestContainerJoinsAnothersNetworkIPCAndUTSNamespaces(t *testing.T) {
	e := newEnv(t)
	a := e.bundle(func(s *specs.Spec) {
		s.Hostname = "pod-a"
		s.Process.Args = []string{"sh", "-c", "mkdir -p /www && echo hello-from-a > /www/index.html && httpd -f -p 127.0.0.1:8080 -h /www"}
	})
	e.must("create", "-b", a, "a")
	e.must("start", "a")
	stA := e.waitStatus("a", "running")
	ns := func(kind string) string { return fmt.Sprintf("/proc/%d/ns/%s", stA.Pid, kind) }
	b := e.bundle(func(s *specs.Spec) {
		s.Hostname = ""
		for i, n := range s.Linux.Namespaces {
			switch n.Type {
			case specs.NetworkNamespace, specs.IPCNamespace, specs.UTSNamespace:
				s.Linux.Namespaces[i].Path = ns(string(map[specs.LinuxNamespaceType]string{
					specs.NetworkNamespace: "net", specs.IPCNamespace: "ipc", specs.UTSNamespace: "uts"}[n.Type]))
			}
		}
		s.Process.Args = []string{"sh", "-c", "hostname; for i in 1 2 3 4 5 6 7 8 9 10; do wget -q -O - http://127.0.0.1:8080/ && break; sleep 0.2; done; readlink /proc/self/ns/mnt; readlink /proc/self/ns/pid; readlink /proc/self/ns/net"}
	})
	out := e.must("run", "-b", b, "b")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 5 || lines[0] != "pod-a" || lines[1] != "hello-from-a" {
		t.Fatalf("B did not see A's hostname or server:\n%s", out)
	}
	linkA := func(kind string) string { l, _ := os.Readlink(ns(kind)); return l }
	if lines[2] == linkA("mnt") || lines[3] == linkA("pid") {
		t.Errorf("B shares A's mount or pid namespace: %v vs %s %s", lines[2:], linkA("mnt"), linkA("pid"))
	}
	if lines[4] != linkA("net") {
		t.Errorf("B's net namespace %s is not A's %s", lines[4], linkA("net"))
	}
}

func TestHardeningMasksReadonlyPathsCapabilitiesAndNoNewPrivs(t *testing.T) {
	e := newEnv(t)
	b := e.bundle(sh(`cat /proc/kcore >/dev/null 2>&1 && echo kcore-readable || echo kcore-masked
echo 1 > /proc/sys/kernel/ns_last_pid 2>/dev/null && echo sys-writable || echo sys-readonly
mount -t tmpfs none /tmp 2>/dev/null && echo mount-allowed || echo mount-denied
grep NoNewPrivs /proc/self/status`))
	out := e.must("run", "-b", b, "hard")
	for _, want := range []string{"kcore-masked", "sys-readonly", "mount-denied", "NoNewPrivs:\t1"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
}

func TestBadInputGetsClearErrorsAndLeavesNothing(t *testing.T) {
	e := newEnv(t)
	malformed := e.bundle(nil)
	os.WriteFile(filepath.Join(malformed, "config.json"), []byte("{not json"), 0o644)
	noRootfs := e.bundle(func(s *specs.Spec) { s.Root.Path = "missing" })
	badNS := e.bundle(func(s *specs.Spec) {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: "bogus"})
	})
	for name, c := range map[string]struct{ bundle, want string }{
		"malformed": {malformed, "config.json"},
		"norootfs":  {noRootfs, "rootfs"},
		"badns":     {badNS, `unknown namespace type "bogus"`},
	} {
		r := e.run("create", "-b", c.bundle, name)
		if r.code == 0 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%s: exit %d, stderr %q, want an error naming %q", name, r.code, r.stderr, c.want)
		}
		if _, err := os.Stat(filepath.Join(e.root, name)); err == nil {
			t.Errorf("%s: state left behind", name)
		}
	}
	ok := e.bundle(sh("true"))
	e.must("create", "-b", ok, "dup")
	if r := e.run("create", "-b", ok, "dup"); r.code == 0 || !strings.Contains(r.stderr, "already exists") {
		t.Errorf("duplicate id: %d %q", r.code, r.stderr)
	}
	e.must("start", "dup")
	e.waitStatus("dup", "stopped")
	if r := e.run("start", "dup"); r.code == 0 || !strings.Contains(r.stderr, "not created") {
		t.Errorf("start of a stopped container: %d %q", r.code, r.stderr)
	}
	e.must("delete", "dup")
	if r := e.run("state", "dup"); r.code == 0 || !strings.Contains(r.stderr, "does not exist") {
		t.Errorf("state of a deleted container: %d %q", r.code, r.stderr)
	}
}

func TestSeccompRuleMakesASyscallFailWithTheConfiguredErrno(t *testing.T) {
	e := newEnv(t)
	errno := uint(1) // EPERM
	b := e.bundle(func(s *specs.Spec) {
		s.Process.Args = []string{"sh", "-c", "mkdir /tmp/allowed && echo mkdir-ok; hostname x 2>&1 || echo sethostname-denied; chmod 700 /tmp/allowed 2>&1; echo chmod-done"}
		s.Linux.Seccomp = &specs.LinuxSeccomp{
			DefaultAction: specs.ActAllow,
			Syscalls: []specs.LinuxSyscall{
				{Names: []string{"sethostname"}, Action: specs.ActErrno, ErrnoRet: &errno},
				{Names: []string{"chmod", "fchmodat", "fchmodat2", "no_such_syscall"}, Action: specs.ActErrno, ErrnoRet: ptr(uint(13))},
			},
		}
	})
	out := e.must("run", "-b", b, "sec")
	for _, want := range []string{"mkdir-ok", "Operation not permitted", "sethostname-denied", "Permission denied", "chmod-done"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
}

func TestContainerJoinsAnothersPidAndMountNamespaces(t *testing.T) {
	e := newEnv(t)
	a := e.bundle(sh("echo from-a > /tmp/shared; sleep 100"))
	e.must("create", "-b", a, "pa")
	e.must("start", "pa")
	stA := e.waitStatus("pa", "running")
	time.Sleep(100 * time.Millisecond)
	b := e.bundle(func(s *specs.Spec) {
		for i, n := range s.Linux.Namespaces {
			switch n.Type {
			case specs.PIDNamespace:
				s.Linux.Namespaces[i].Path = fmt.Sprintf("/proc/%d/ns/pid", stA.Pid)
			case specs.MountNamespace:
				s.Linux.Namespaces[i].Path = fmt.Sprintf("/proc/%d/ns/mnt", stA.Pid)
			}
		}
		s.Process.Args = []string{"sh", "-c", "cat /tmp/shared; ps -o comm | grep -c sleep"}
	})
	out := e.must("run", "-b", b, "pb")
	if lines := strings.Fields(out); len(lines) != 2 || lines[0] != "from-a" || lines[1] != "1" {
		t.Errorf("B does not share A's mounts and processes:\n%s", out)
	}
}

func TestProcessSettingsAreApplied(t *testing.T) {
	e := newEnv(t)
	umask := uint32(0o027)
	adj := 500
	hostDir := t.TempDir()
	os.WriteFile(filepath.Join(hostDir, "data"), []byte("bound"), 0o644)
	b := e.bundle(func(s *specs.Spec) {
		s.Process.Args = []string{"sh", "-c", "id; ulimit -n; cat /proc/self/oom_score_adj; pwd || echo pwd-failed; ls -ld /tmp /; umask; echo $GREETING; cat /mnt/data; touch /mnt/x 2>&1 || echo ro-bind; touch /etc/y 2>&1 || echo ro-root; cat /proc/sys/kernel/domainname"}
		s.Process.User = specs.User{UID: 65534, GID: 65534, AdditionalGids: []uint32{10, 20}, Umask: &umask}
		s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 256, Hard: 512}}
		s.Process.OOMScoreAdj = &adj
		s.Process.Cwd = "/tmp"
		s.Process.Env = append(s.Process.Env, "GREETING=hi")
		s.Root.Readonly = true
		s.Domainname = "example.test"
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/mnt", Type: "bind", Source: hostDir, Options: []string{"rbind", "ro", "nosuid", "nodev"}})
	})
	out := e.must("run", "-b", b, "proc")
	for _, want := range []string{"uid=65534", "gid=65534", "groups=10", "20", "\n256\n", "\n500\n", "\n/tmp\n", "0027", "hi\n", "bound", "ro-bind", "ro-root", "example.test"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
}

func TestNegativeOOMScoreAdjIsClampedNotFatal(t *testing.T) {
	e := newEnv(t)
	adj := -999
	b := e.bundle(func(s *specs.Spec) {
		s.Process.Args = []string{"cat", "/proc/self/oom_score_adj"}
		s.Process.OOMScoreAdj = &adj
	})
	// Where CAP_SYS_RESOURCE is missing the value is clamped; where it is
	// present it applies. Either way the container runs.
	out := strings.TrimSpace(e.must("run", "-b", b, "oomadj"))
	if n, err := strconv.Atoi(out); err != nil || n > 0 {
		t.Errorf("oom_score_adj = %q", out)
	}
}

func TestConcurrentStartsStartOnce(t *testing.T) {
	e := newEnv(t)
	e.must("create", "-b", e.bundle(sh("sleep 100")), "race")
	results := make(chan int, 4)
	for range 4 {
		go func() { results <- e.run("start", "race").code }()
	}
	ok := 0
	for range 4 {
		if <-results == 0 {
			ok++
		}
	}
	if ok != 1 {
		t.Errorf("%d of 4 concurrent starts succeeded, want 1", ok)
	}
}

func TestDeviceCgroupDeniesWhatTheSpecDenies(t *testing.T) {
	e := newEnv(t)
	b := e.bundle(func(s *specs.Spec) {
		// CAP_MKNOD lets the process make /dev/mem; the device cgroup (the
		// default spec denies all devices) must still refuse to open it.
		caps := append(s.Process.Capabilities.Bounding, "CAP_MKNOD")
		s.Process.Capabilities.Bounding, s.Process.Capabilities.Effective, s.Process.Capabilities.Permitted = caps, caps, caps
		s.Process.Args = []string{"sh", "-c", "mknod /dev/mem c 1 1; head -c 1 /dev/mem >/dev/null 2>&1 && echo mem-readable || echo mem-denied; head -c 1 /dev/zero | wc -c"}
	})
	out := e.must("run", "-b", b, "dev")
	if !strings.Contains(out, "mem-denied") || !strings.Contains(out, "1") {
		t.Errorf("device cgroup:\n%s", out)
	}
}

func TestReviewFixesHoldInsideTheContainer(t *testing.T) {
	e := newEnv(t)
	hostDir := t.TempDir()
	os.WriteFile(filepath.Join(hostDir, "token"), []byte("tok"), 0o644)
	b := e.bundle(func(s *specs.Spec) {
		s.Process.Args = []string{"sh", "-c", `ls /proc/self/fd | tr '\n' ' '; echo
grep CapEff /proc/self/status
echo 1 > /sys/fs/cgroup/pids/cgroup.procs 2>/dev/null && echo cgroup-writable || echo cgroup-readonly
cat /sys/fs/cgroup/memory/memory.limit_in_bytes
cat /run/secrets/token; echo
cat /proc/sys/net/ipv4/ip_unprivileged_port_start`}
		s.Process.Capabilities = nil // no capabilities at all, not root's
		limit := int64(64 << 20)
		s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit}
		s.Linux.Sysctl = map[string]string{"net.ipv4.ip_unprivileged_port_start": "0"}
		// The image links /var/run to /run, as Debian's do.
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/var/run/secrets", Type: "bind", Source: hostDir, Options: []string{"rbind", "ro"}})
	})
	os.MkdirAll(filepath.Join(b, "rootfs", "run"), 0o755)
	os.MkdirAll(filepath.Join(b, "rootfs", "var"), 0o755)
	os.Symlink("/run", filepath.Join(b, "rootfs", "var", "run"))
	out := e.must("run", "-b", b, "fixes")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 6 {
		t.Fatalf("output:\n%s", out)
	}
	// ls itself holds 0, 1, 2 and the directory it reads.
	if fds := strings.Fields(lines[0]); len(fds) > 4 {
		t.Errorf("descriptors leaked into the container: %v", fds)
	}
	if !strings.HasSuffix(lines[1], "0000000000000000") {
		t.Errorf("a process without capabilities has %s", lines[1])
	}
	if lines[2] != "cgroup-readonly" {
		t.Errorf("the host's cgroup hierarchy is writable from the container")
	}
	if lines[3] != "67108864" {
		t.Errorf("the container's /sys/fs/cgroup/memory is not its own cgroup: limit %q", lines[3])
	}
	if lines[4] != "tok" {
		t.Errorf("a mount through the image's /var/run link: %q", lines[4])
	}
	if lines[5] != "0" {
		t.Errorf("sysctl not applied: %q", lines[5])
	}
	if _, err := os.Stat("/run/secrets/token"); err == nil {
		t.Errorf("the mount landed on the host's /run")
	}
}

func TestSharedRootfsPropagationStarts(t *testing.T) {
	e := newEnv(t)
	b := e.bundle(func(s *specs.Spec) {
		s.Linux.RootfsPropagation = "rshared"
		s.Process.Args = []string{"sh", "-c", "awk '$5 == \"/\"' /proc/self/mountinfo"}
	})
	out := e.must("run", "-b", b, "shared")
	if !strings.Contains(out, "shared:") {
		t.Errorf("the root is not shared: %q", out)
	}
}

// The init enters its v1 cgroups thread by thread and is cloned into the
// unified one: the running program must be in the container's cgroup in
// every hierarchy, with no thread left behind, right after create.
func TestCreatedProcessIsInItsCgroupInEveryHierarchy(t *testing.T) {
	e := newEnv(t)
	var cgPath string
	b := e.bundle(func(s *specs.Spec) {
		s.Process.Args = []string{"sleep", "100"}
		cgPath = s.Linux.CgroupsPath
	})
	e.must("create", "-b", b, "member")
	st := e.waitStatus("member", "created")
	check := func(when string) {
		t.Helper()
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", st.Pid))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Fields(string(data))
		if len(lines) == 0 {
			t.Fatal("no cgroups listed")
		}
		for _, line := range lines {
			// hierarchy-id:controllers:path; hierarchies the host has not
			// mounted (none here) would show the root.
			parts := strings.SplitN(line, ":", 3)
			if parts[2] != cgPath {
				t.Errorf("%s: %q is not in %s", when, line, cgPath)
			}
		}
	}
	check("created")
	e.must("start", "member")
	e.waitStatus("member", "running")
	check("running")
	threads := "tasks" // cgroup v1
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		threads = "cgroup.threads"
	}
	tasks, err := os.ReadFile(filepath.Join(cgroupDir("pids", cgPath), threads))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Fields(string(tasks)); len(got) != 1 || got[0] != strconv.Itoa(st.Pid) {
		t.Errorf("tasks of the container's pids cgroup = %v, want only the program %d", got, st.Pid)
	}
}

package cri

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/elastic/go-seccomp-bpf/arch"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-sh/skiff/internal/image"
	"github.com/skiff-sh/skiff/internal/runtime"
	"github.com/skiff-sh/skiff/internal/runtime/seccomp"
)

// What a filter returns, as the kernel reads it.
const (
	retAllow  = unix.SECCOMP_RET_ALLOW
	retEPERM  = unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
	retEACCES = unix.SECCOMP_RET_ERRNO | uint32(unix.EACCES)
	retENOSYS = unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)
)

// filter is a profile compiled by the runtime's compiler, run in a BPF
// interpreter on the seccomp_data the kernel would give it.
type filter struct {
	vm   *bpf.VM
	arch *arch.Info
}

func compile(t *testing.T, p *specs.LinuxSeccomp) *filter {
	t.Helper()
	prog, err := seccomp.Compile(p)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	insts := make([]bpf.Instruction, len(prog))
	for i, f := range prog {
		insts[i] = bpf.RawInstruction{Op: f.Code, Jt: f.Jt, Jf: f.Jf, K: f.K}.Disassemble()
	}
	vm, err := bpf.NewVM(insts)
	if err != nil {
		t.Fatal(err)
	}
	info, err := arch.GetInfo("")
	if err != nil {
		t.Fatal(err)
	}
	return &filter{vm: vm, arch: info}
}

// has tells whether this architecture has the call.
func (f *filter) has(name string) bool {
	_, ok := f.arch.SyscallNames[name]
	return ok
}

// verdict is the filter's answer to a call with args.
func (f *filter) verdict(t *testing.T, name string, args ...uint64) uint32 {
	t.Helper()
	nr, ok := f.arch.SyscallNames[name]
	if !ok {
		t.Fatalf("no syscall %s on %s", name, f.arch.Name)
	}
	// struct seccomp_data: nr, arch, instruction_pointer, args[6]. The
	// filter loads 32-bit words at their native offsets; the interpreter
	// reads words big-endian, so each is written so.
	data := make([]byte, 64)
	binary.BigEndian.PutUint32(data[0:], uint32(nr|f.arch.SeccompMask))
	binary.BigEndian.PutUint32(data[4:], uint32(f.arch.ID))
	little := binary.NativeEndian.Uint16([]byte{1, 0}) == 1
	for i, a := range args {
		lo, hi := 16+8*i, 16+8*i+4
		if !little {
			lo, hi = hi, lo
		}
		binary.BigEndian.PutUint32(data[lo:], uint32(a))
		binary.BigEndian.PutUint32(data[hi:], uint32(a>>32))
	}
	v, err := f.vm.Run(data)
	if err != nil {
		t.Fatal(err)
	}
	return uint32(v)
}

func withCaps(extra ...string) []string {
	return append(slices.Clone(defaultCapabilities), extra...)
}

func TestDefaultProfileCompilesToAFilterTheKernelTakes(t *testing.T) {
	for name, caps := range map[string][]string{"none": nil, "default": defaultCapabilities, "all": allCapabilities} {
		prog, err := seccomp.Compile(defaultProfile(caps))
		if err != nil {
			t.Fatalf("%s capabilities: %v", name, err)
		}
		// The kernel takes at most BPF_MAXINSNS (4096) instructions; a
		// filter this long would also cost every syscall.
		if len(prog) < 300 || len(prog) > 2000 {
			t.Errorf("%s capabilities: %d instructions", name, len(prog))
		}
	}
}

func TestDefaultProfileAllowsTheUsualAndDeniesTheDangerous(t *testing.T) {
	def := compile(t, defaultProfile(defaultCapabilities))
	admin := compile(t, defaultProfile(withCaps("CAP_SYS_ADMIN")))
	noChroot := compile(t, defaultProfile(slices.DeleteFunc(slices.Clone(defaultCapabilities), func(c string) bool { return c == "CAP_SYS_CHROOT" })))
	ptraceCap := compile(t, defaultProfile(withCaps("CAP_SYS_PTRACE")))
	const sigchld = uint64(unix.SIGCHLD)
	threadFlags := uint64(unix.CLONE_VM | unix.CLONE_FS | unix.CLONE_FILES | unix.CLONE_SIGHAND | unix.CLONE_THREAD | unix.CLONE_SYSVSEM)
	for _, tc := range []struct {
		f    *filter
		desc string
		call string
		args []uint64
		want uint32
	}{
		{def, "read", "read", nil, retAllow},
		{def, "execve", "execve", nil, retAllow},
		{def, "openat", "openat", nil, retAllow},
		{def, "futex", "futex", nil, retAllow},
		{def, "epoll_pwait", "epoll_pwait", nil, retAllow},
		{def, "ptrace (Linux >= 4.8)", "ptrace", nil, retAllow},
		{def, "chroot with CAP_SYS_CHROOT", "chroot", nil, retAllow},
		{noChroot, "chroot without CAP_SYS_CHROOT", "chroot", nil, retEPERM},
		{def, "arch_prctl", "arch_prctl", nil, retAllow},
		{def, "kexec_load", "kexec_load", nil, retEPERM},
		{compile(t, defaultProfile(allCapabilities)), "kexec_load with every capability", "kexec_load", nil, retEPERM},
		{def, "keyctl", "keyctl", nil, retEPERM},
		{def, "open_by_handle_at without CAP_DAC_READ_SEARCH", "open_by_handle_at", nil, retEPERM},
		{def, "reboot without CAP_SYS_BOOT", "reboot", nil, retEPERM},
		{def, "init_module without CAP_SYS_MODULE", "init_module", nil, retEPERM},
		{def, "kcmp without CAP_SYS_PTRACE", "kcmp", nil, retEPERM},
		{ptraceCap, "kcmp with CAP_SYS_PTRACE", "kcmp", nil, retAllow},
		{def, "mount without CAP_SYS_ADMIN", "mount", nil, retEPERM},
		{admin, "mount with CAP_SYS_ADMIN", "mount", nil, retAllow},
		{def, "unshare without CAP_SYS_ADMIN", "unshare", []uint64{unix.CLONE_NEWUSER}, retEPERM},
		{admin, "unshare with CAP_SYS_ADMIN", "unshare", []uint64{unix.CLONE_NEWUSER}, retAllow},
		{def, "setns without CAP_SYS_ADMIN", "setns", nil, retEPERM},
		{def, "clone of a process", "clone", []uint64{sigchld}, retAllow},
		{def, "clone of a thread", "clone", []uint64{threadFlags}, retAllow},
		{def, "clone into a user namespace", "clone", []uint64{unix.CLONE_NEWUSER | sigchld}, retEPERM},
		{def, "clone into a mount namespace", "clone", []uint64{unix.CLONE_NEWNS | sigchld}, retEPERM},
		{def, "clone into a network namespace", "clone", []uint64{unix.CLONE_NEWNET}, retEPERM},
		{admin, "clone into a user namespace with CAP_SYS_ADMIN", "clone", []uint64{unix.CLONE_NEWUSER | sigchld}, retAllow},
		{def, "clone3 without CAP_SYS_ADMIN (libc falls back to clone)", "clone3", nil, retENOSYS},
		{admin, "clone3 with CAP_SYS_ADMIN", "clone3", nil, retAllow},
		{def, "socket(AF_INET)", "socket", []uint64{unix.AF_INET}, retAllow},
		{def, "socket(AF_UNIX)", "socket", []uint64{unix.AF_UNIX}, retAllow},
		{def, "socket(AF_NETLINK)", "socket", []uint64{unix.AF_NETLINK}, retAllow},
		{def, "socket(AF_XDP)", "socket", []uint64{unix.AF_XDP}, retAllow},
		{def, "socket(AF_VSOCK)", "socket", []uint64{unix.AF_VSOCK}, retEPERM},
		{def, "socket(AF_VSOCK) with high bits the kernel ignores", "socket", []uint64{1<<32 | unix.AF_VSOCK}, retEPERM},
		{def, "personality(PER_LINUX)", "personality", []uint64{0}, retAllow},
		{def, "personality(PER_LINUX32|UNAME26)", "personality", []uint64{0x20008}, retAllow},
		{def, "personality(0xffffffff), the query", "personality", []uint64{0xffffffff}, retAllow},
		{def, "personality(ADDR_NO_RANDOMIZE)", "personality", []uint64{0x0040000}, retEPERM},
		{def, "personality(PER_LINUX32|ADDR_NO_RANDOMIZE)", "personality", []uint64{0x0040008}, retEPERM},
		{def, "bpf without CAP_BPF or CAP_SYS_ADMIN", "bpf", nil, retEPERM},
		{compile(t, defaultProfile(withCaps("CAP_BPF"))), "bpf with CAP_BPF", "bpf", nil, retAllow},
		{def, "settimeofday without CAP_SYS_TIME", "settimeofday", nil, retEPERM},
		{def, "io_uring_setup", "io_uring_setup", nil, retEPERM},
		{def, "userfaultfd", "userfaultfd", nil, retEPERM},
	} {
		if !tc.f.has(tc.call) {
			continue // arch_prctl on arm64
		}
		if got := tc.f.verdict(t, tc.call, tc.args...); got != tc.want {
			t.Errorf("%s: %#x, want %#x", tc.desc, got, tc.want)
		}
	}
}

// TestDefaultProfileArgumentRulesAllowNoStrayCall runs the calls that the
// default profile filters by argument with many arguments, among them
// every syscall number in either half: the compiler leaves a mismatched
// argument where later rules look for the syscall number (see
// defaultProfile), and no such value may let a call through.
func TestDefaultProfileArgumentRulesAllowNoStrayCall(t *testing.T) {
	for _, admin := range []bool{false, true} {
		caps := defaultCapabilities
		if admin {
			caps = withCaps("CAP_SYS_ADMIN")
		}
		f := compile(t, defaultProfile(caps))
		want := map[string]func(a uint64) bool{
			"clone":       func(a uint64) bool { return admin || uint32(a)&namespaceCloneFlags == 0 },
			"socket":      func(a uint64) bool { return a>>32 == 0 && a != unix.AF_VSOCK },
			"personality": func(a uint64) bool { return slices.Contains([]uint64{0, 8, 0x20000, 0x20008, 0xffffffff}, a) },
		}
		var args []uint64
		for w := uint64(0); w < 1024; w++ {
			args = append(args, w, w<<32, w<<32|unix.AF_VSOCK, w<<32|unix.AF_INET, w|unix.CLONE_NEWUSER,
				w<<32|unix.CLONE_NEWUSER, w<<32|uname26, w<<32|0xffffffff)
		}
		args = append(args, 0x20000, 0x20008, 0xffffffff, 0xffffffffffffffff, unix.CLONE_NEWNS|unix.CLONE_NEWNET)
		for call, allowed := range want {
			for _, a := range args {
				got := f.verdict(t, call, a)
				switch {
				case got == retAllow && !allowed(a):
					t.Errorf("admin %v: %s(%#x) allowed", admin, call, a)
				case got != retAllow && got != retEPERM:
					t.Errorf("admin %v: %s(%#x): %#x", admin, call, a, got)
				case got == retEPERM && allowed(a):
					t.Errorf("admin %v: %s(%#x) denied", admin, call, a)
				}
			}
		}
	}
}

func TestDefaultProfileNamesTheNativeAnd32BitArchitectures(t *testing.T) {
	p := defaultProfile(defaultCapabilities)
	if p.DefaultAction != specs.ActErrno || p.DefaultErrnoRet == nil || *p.DefaultErrnoRet != uint(unix.EPERM) {
		t.Errorf("default action %s errno %v, want EPERM", p.DefaultAction, p.DefaultErrnoRet)
	}
	want := map[string][]specs.Arch{"amd64": {specs.ArchX86_64, specs.ArchX86}, "arm64": {specs.ArchAARCH64, specs.ArchARM}}[goruntime.GOARCH]
	if want != nil && !slices.Equal(p.Architectures, want) {
		t.Errorf("architectures %v, want %v", p.Architectures, want)
	}
}

func TestSeccompProfileFollowsTheSecurityContext(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.json")
	rd := &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}
	for _, tc := range []struct {
		desc    string
		sc      *runtimeapi.LinuxContainerSecurityContext
		want    string // "none", "default" or an error's text
		wantErr bool
	}{
		{"no security context", nil, "none", false},
		{"no profile", &runtimeapi.LinuxContainerSecurityContext{}, "none", false},
		{"Unconfined", &runtimeapi.LinuxContainerSecurityContext{Seccomp: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined}}, "none", false},
		{"RuntimeDefault", &runtimeapi.LinuxContainerSecurityContext{Seccomp: rd}, "default", false},
		{"RuntimeDefault, privileged", &runtimeapi.LinuxContainerSecurityContext{Seccomp: rd, Privileged: true}, "none", false},
		{"Localhost, privileged", &runtimeapi.LinuxContainerSecurityContext{Privileged: true,
			Seccomp: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: missing}}, "none", false},
		{"deprecated runtime/default", &runtimeapi.LinuxContainerSecurityContext{SeccompProfilePath: "runtime/default"}, "default", false},
		{"deprecated docker/default", &runtimeapi.LinuxContainerSecurityContext{SeccompProfilePath: "docker/default"}, "default", false},
		{"deprecated unconfined", &runtimeapi.LinuxContainerSecurityContext{SeccompProfilePath: "unconfined"}, "none", false},
		{"the profile wins over the deprecated path", &runtimeapi.LinuxContainerSecurityContext{SeccompProfilePath: "runtime/default",
			Seccomp: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined}}, "none", false},
		{"deprecated unknown", &runtimeapi.LinuxContainerSecurityContext{SeccompProfilePath: "bogus"}, `unknown profile "bogus"`, true},
		{"deprecated missing localhost file", &runtimeapi.LinuxContainerSecurityContext{SeccompProfilePath: "localhost/" + missing}, missing, true},
		{"localhost reference with another type", &runtimeapi.LinuxContainerSecurityContext{
			Seccomp: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault, LocalhostRef: "/x.json"}}, "localhost reference", true},
	} {
		p, err := seccompProfile(tc.sc, defaultCapabilities)
		switch {
		case tc.wantErr:
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: error %v, want one mentioning %q", tc.desc, err, tc.want)
			}
		case err != nil:
			t.Errorf("%s: %v", tc.desc, err)
		case tc.want == "none" && p != nil:
			t.Errorf("%s: a filter, want none", tc.desc)
		case tc.want == "default" && (p == nil || len(p.Syscalls) == 0 || !slices.Contains(p.Syscalls[0].Names, "execve")):
			t.Errorf("%s: %v, want the default profile", tc.desc, p)
		}
	}
}

// writeProfile writes a profile file and returns its path.
func writeProfile(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "profile.json")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func localhost(path string) *runtimeapi.LinuxContainerSecurityContext {
	return &runtimeapi.LinuxContainerSecurityContext{
		Seccomp: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: path}}
}

func TestLocalhostProfileIsReadWithDockersConditions(t *testing.T) {
	path := writeProfile(t, `{
		"defaultAction": "SCMP_ACT_ALLOW",
		"architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"],
		"archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]}],
		"syscalls": [
			{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13, "comment": "no new directories"},
			{"name": "rmdir", "action": "SCMP_ACT_ERRNO"},
			{"names": ["unlink", "unlinkat"], "action": "SCMP_ACT_ERRNO", "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
			{"names": ["chmod", "fchmodat"], "action": "SCMP_ACT_ERRNO", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
			{"names": ["sethostname"], "action": "SCMP_ACT_ERRNO", "includes": {"arches": ["no-such-arch"]}},
			{"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "includes": {"minKernel": "999.0"}},
			{"names": ["setns"], "action": "SCMP_ACT_ERRNO", "includes": {"minKernel": "3.0"}},
			{"names": ["socket"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_EQ"}]}
		]
	}`)
	plain, err := seccompProfile(localhost(path), defaultCapabilities)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := seccompProfile(&runtimeapi.LinuxContainerSecurityContext{SeccompProfilePath: "localhost/" + path}, withCaps("CAP_SYS_ADMIN"))
	if err != nil {
		t.Fatal(err)
	}
	f, fa := compile(t, plain), compile(t, admin)
	for _, tc := range []struct {
		f    *filter
		call string
		args []uint64
		want uint32
	}{
		{f, "mkdirat", nil, retEACCES},
		{f, "rmdir", nil, retEPERM},
		{f, "unlinkat", nil, retEPERM},
		{fa, "unlinkat", nil, retAllow},
		{f, "fchmodat", nil, retAllow},
		{fa, "fchmodat", nil, retEPERM},
		{f, "sethostname", nil, retAllow},
		{f, "getpid", nil, retAllow},
		{f, "setns", nil, retEPERM},
		{f, "socket", []uint64{unix.AF_VSOCK}, retEPERM},
		{f, "socket", []uint64{unix.AF_INET}, retAllow},
		{f, "read", nil, retAllow},
	} {
		if got := tc.f.verdict(t, tc.call, tc.args...); got != tc.want {
			t.Errorf("%s%v: %#x, want %#x", tc.call, tc.args, got, tc.want)
		}
	}
}

func TestBadLocalhostProfileFailsWithItsPath(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.json")
	for _, tc := range []struct {
		desc string
		path string
		want string
	}{
		{"missing file", missing, "no such file"},
		{"relative path", "profiles/audit.json", "not an absolute path"},
		{"not JSON", writeProfile(t, `{"defaultAction": "SCMP_ACT_ALLOW",`), "unexpected end of JSON"},
		{"wrong type", writeProfile(t, `{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": {"names": ["read"]}}`), "cannot unmarshal"},
		{"no default action", writeProfile(t, `{"syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}`), "no defaultAction"},
		{"unknown default action", writeProfile(t, `{"defaultAction": "SCMP_ACT_MAYBE"}`), `"SCMP_ACT_MAYBE" is not supported`},
		{"rule without names", writeProfile(t, `{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"action": "SCMP_ACT_ERRNO"}]}`), "syscalls[0]: no names"},
		{"rule without action", writeProfile(t, `{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"]}]}`), "syscalls[0]: no action"},
		{"name and names", writeProfile(t, `{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"name": "read", "names": ["write"], "action": "SCMP_ACT_ERRNO"}]}`), "both name and names"},
		{"notify", writeProfile(t, `{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mount"], "action": "SCMP_ACT_NOTIFY"}]}`), "SCMP_ACT_NOTIFY"},
		{"bad minKernel", writeProfile(t, `{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "includes": {"minKernel": "new"}}]}`), `minKernel "new"`},
	} {
		_, err := seccompProfile(localhost(tc.path), defaultCapabilities)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.path) {
			t.Errorf("%s: error %v, want one naming %s and mentioning %q", tc.desc, err, tc.path, tc.want)
		}
	}
}

func TestContainerSpecAppliesTheProfileForTheFinalCapabilities(t *testing.T) {
	build := func(sc *runtimeapi.LinuxContainerSecurityContext) (*specs.Spec, error) {
		c := &container{ID: "c1", Config: &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: "app"},
			Linux:    &runtimeapi.LinuxContainerConfig{SecurityContext: sc},
		}}
		sb := &sandbox{ID: "s1", Config: &runtimeapi.PodSandboxConfig{}}
		return containerSpec(c, sb, 1, t.TempDir(), &image.Config{Cmd: []string{"sh"}}, t.TempDir())
	}
	rd := &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}

	spec, err := build(&runtimeapi.LinuxContainerSecurityContext{Seccomp: rd})
	if err != nil {
		t.Fatal(err)
	}
	if spec.Linux.Seccomp == nil {
		t.Fatal("RuntimeDefault: no filter")
	}
	if got := compile(t, spec.Linux.Seccomp).verdict(t, "mount"); got != retEPERM {
		t.Errorf("mount with the default capabilities: %#x, want EPERM", got)
	}
	spec, err = build(&runtimeapi.LinuxContainerSecurityContext{Seccomp: rd,
		Capabilities: &runtimeapi.Capability{AddCapabilities: []string{"SYS_ADMIN"}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := compile(t, spec.Linux.Seccomp).verdict(t, "mount"); got != retAllow {
		t.Errorf("mount with SYS_ADMIN added: %#x, want allowed", got)
	}
	spec, err = build(&runtimeapi.LinuxContainerSecurityContext{Seccomp: rd,
		Capabilities: &runtimeapi.Capability{DropCapabilities: []string{"ALL"}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := compile(t, spec.Linux.Seccomp).verdict(t, "chroot"); got != retEPERM {
		t.Errorf("chroot with every capability dropped: %#x, want EPERM", got)
	}

	for _, sc := range []*runtimeapi.LinuxContainerSecurityContext{nil, {Seccomp: rd, Privileged: true}} {
		spec, err := build(sc)
		if err != nil {
			t.Fatal(err)
		}
		if spec.Linux.Seccomp != nil {
			t.Errorf("security context %v: a filter, want none", sc)
		}
	}
	missing := filepath.Join(t.TempDir(), "missing.json")
	if _, err := build(localhost(missing)); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing localhost profile: error %v, want one naming it", err)
	}
}

// TestDefaultProfileConfinesARealContainer runs busybox under the default
// profile through the runtime, with no_new_privs off as Kubernetes leaves
// it (so the filter goes in before the capabilities are dropped).
func TestDefaultProfileConfinesARealContainer(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (namespaces, cgroups and mounts); CI runs as root, so it runs there")
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Fatal("busybox-static is required (make deps installs it)")
	}
	dir := t.TempDir()
	initBin := filepath.Join(dir, "skiff-init")
	build := exec.Command("go", "build", "-o", initBin, "./cmd/skiff-init")
	build.Dir = filepath.Join("..", "..")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build skiff-init: %v\n%s", err, out)
	}
	rt := &runtime.Runtime{Root: filepath.Join(dir, "state"), Binary: initBin}
	t.Cleanup(func() {
		parents, _ := filepath.Glob("/sys/fs/cgroup/*/skiff-cri-test")
		for _, p := range append(parents, "/sys/fs/cgroup/skiff-cri-test") {
			os.Remove(p)
		}
	})
	const script = `busybox grep Seccomp: /proc/self/status
busybox unshare -U true 2>/dev/null && echo unshare=ok || echo unshare=denied
busybox mount -t tmpfs x /mnt 2>/dev/null && echo mount=ok || echo mount=denied
echo shell=ok`
	run := func(id string, caps []string, profile *specs.LinuxSeccomp) string {
		t.Helper()
		bundle := filepath.Join(dir, id)
		rootfs := filepath.Join(bundle, "rootfs")
		for _, d := range []string{"bin", "proc", "sys", "dev", "tmp", "mnt"} {
			if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		data, err := os.ReadFile("/bin/busybox")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(rootfs, "bin", "busybox"), data, 0o755); err != nil {
			t.Fatal(err)
		}
		spec := runtime.DefaultSpec()
		spec.Root = &specs.Root{Path: rootfs}
		spec.Process.Terminal = false
		spec.Process.NoNewPrivileges = false
		spec.Process.Args = []string{"/bin/busybox", "sh", "-c", script}
		spec.Process.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}
		spec.Linux.Seccomp = profile
		spec.Linux.CgroupsPath = fmt.Sprintf("/skiff-cri-test/%s-%d", id, time.Now().UnixNano())
		if err := writeBundle(bundle, spec); err != nil {
			t.Fatal(err)
		}
		// A file, not a pipe: the shim keeps the container's stdio.
		out, err := os.Create(filepath.Join(dir, id+".out"))
		if err != nil {
			t.Fatal(err)
		}
		defer out.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := rt.Create(ctx, id, bundle, runtime.CreateOptions{Stdout: out, Stderr: out}); err != nil {
			t.Fatalf("create %s: %v", id, err)
		}
		t.Cleanup(func() { rt.Delete(id, true) })
		if err := rt.Start(id); err != nil {
			t.Fatalf("start %s: %v", id, err)
		}
		exit, err := rt.Wait(ctx, id)
		if err != nil {
			t.Fatalf("wait %s: %v", id, err)
		}
		text, _ := os.ReadFile(out.Name())
		if exit.Code != 0 {
			t.Fatalf("%s exited %d:\n%s", id, exit.Code, text)
		}
		return string(text)
	}
	expect := func(id, out string, want ...string) {
		t.Helper()
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: no %q in:\n%s", id, w, out)
			}
		}
	}

	control := run("unconfined", defaultCapabilities, nil)
	expect("unconfined", control, "Seccomp:\t0", "shell=ok")
	confined := run("default", defaultCapabilities, defaultProfile(defaultCapabilities))
	expect("default", confined, "Seccomp:\t2", "mount=denied", "shell=ok")
	if strings.Contains(control, "unshare=ok") {
		// Only the filter stops a user namespace, which needs no capability.
		expect("default", confined, "unshare=denied")
	} else {
		t.Log("this kernel refuses user namespaces anyway: unshare proves nothing")
	}
	admin := withCaps("CAP_SYS_ADMIN")
	expect("admin", run("admin", admin, defaultProfile(admin)), "Seccomp:\t2", "mount=ok", "shell=ok")
}

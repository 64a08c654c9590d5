package cri

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-sh/skiff/internal/runtime/seccomp"
)

// Seccomp profiles, chosen as containerd chooses them: a pod's
// RuntimeDefault is the Docker/containerd default profile (defaultProfile),
// Localhost a profile file on the node, Unconfined (and no profile at all,
// Kubernetes' default unless the kubelet's SeccompDefault is on) no filter.
// Privileged containers get no filter whatever they ask for.

// Values of the deprecated SeccompProfilePath, which older kubelets send
// in place of the SecurityProfile.
const (
	seccompUnconfined     = "unconfined"
	seccompRuntimeDefault = "runtime/default"
	seccompDockerDefault  = "docker/default"
	seccompLocalhost      = "localhost/"
)

// seccompProfile picks a container's seccomp filter (nil: none) from its
// security context; caps is its final bounding set, which decides the
// default profile's capability-dependent rules and a profile file's
// includes and excludes.
func seccompProfile(sc *runtimeapi.LinuxContainerSecurityContext, caps []string) (*specs.LinuxSeccomp, error) {
	if sc.GetPrivileged() {
		return nil, nil
	}
	prof := sc.GetSeccomp()
	if prof == nil {
		var err error
		if prof, err = profileFromPath(sc.GetSeccompProfilePath()); prof == nil || err != nil {
			return nil, err
		}
	}
	if prof.ProfileType != runtimeapi.SecurityProfile_Localhost && prof.LocalhostRef != "" {
		return nil, fmt.Errorf("seccomp: a localhost reference (%q) with profile type %s", prof.LocalhostRef, prof.ProfileType)
	}
	switch prof.ProfileType {
	case runtimeapi.SecurityProfile_Unconfined:
		return nil, nil
	case runtimeapi.SecurityProfile_RuntimeDefault:
		return defaultProfile(caps), nil
	case runtimeapi.SecurityProfile_Localhost:
		return loadProfile(strings.TrimPrefix(prof.LocalhostRef, seccompLocalhost), caps)
	}
	return nil, fmt.Errorf("seccomp: unknown profile type %s", prof.ProfileType)
}

// profileFromPath reads the deprecated field; nil means no filter.
func profileFromPath(path string) (*runtimeapi.SecurityProfile, error) {
	switch {
	case path == "" || path == seccompUnconfined:
		return nil, nil
	case path == seccompRuntimeDefault || path == seccompDockerDefault:
		return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}, nil
	case strings.HasPrefix(path, seccompLocalhost):
		return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost,
			LocalhostRef: strings.TrimPrefix(path, seccompLocalhost)}, nil
	}
	return nil, fmt.Errorf("seccomp: unknown profile %q", path)
}

// defaultAllowed are the syscalls the default profile allows every
// container: Docker's list (moby/profiles seccomp/default.json), by topic.
// Names this machine's architecture lacks (the 32-bit ABI's *32 and
// *_time64 variants on a 64-bit one, another architecture's own calls) are
// skipped when the filter is compiled.
//
// Left out, as in containerd: the kernel keyring (add_key, keyctl,
// request_key), which recent Docker releases allow but which is namespaced
// by user namespace only on newer kernels. Never allowed: kexec_*,
// swapon/swapoff, *_module without CAP_SYS_MODULE, userfaultfd, io_uring_*,
// pivot_root, and everything else the lists here do not name.
var defaultAllowed = slices.Concat(
	// Processes, threads and their credentials.
	[]string{
		"execve", "execveat", "exit", "exit_group", "fork", "vfork", "wait4", "waitid", "waitpid",
		"getpid", "getppid", "gettid", "getpgid", "getpgrp", "getsid", "setpgid", "setsid",
		"getuid", "getuid32", "geteuid", "geteuid32", "getgid", "getgid32", "getegid", "getegid32",
		"getresuid", "getresuid32", "getresgid", "getresgid32", "getgroups", "getgroups32",
		"setuid", "setuid32", "setgid", "setgid32", "setreuid", "setreuid32", "setregid", "setregid32",
		"setresuid", "setresuid32", "setresgid", "setresgid32", "setgroups", "setgroups32",
		"setfsuid", "setfsuid32", "setfsgid", "setfsgid32", "capget", "capset", "prctl",
		"getrlimit", "ugetrlimit", "setrlimit", "prlimit64", "getrusage", "getpriority", "setpriority",
		"ioprio_get", "ioprio_set", "umask", "set_tid_address", "set_robust_list", "get_robust_list",
		"get_thread_area", "set_thread_area", "rseq", "restart_syscall", "seccomp",
		"landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self",
		"pidfd_open", "pidfd_send_signal", "process_mrelease",
		// ptrace cannot escape a seccomp filter since Linux 4.8; skiff's
		// runtime needs a far newer kernel (close_range, pidfd_open).
		"ptrace", "process_vm_readv", "process_vm_writev",
	},
	// Scheduling.
	[]string{
		"sched_yield", "sched_getaffinity", "sched_setaffinity", "sched_getattr", "sched_setattr",
		"sched_getparam", "sched_setparam", "sched_getscheduler", "sched_setscheduler",
		"sched_get_priority_max", "sched_get_priority_min",
		"sched_rr_get_interval", "sched_rr_get_interval_time64", "getcpu",
	},
	// Signals.
	[]string{
		"kill", "tkill", "tgkill", "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo",
		"rt_tgsigqueueinfo", "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait", "rt_sigtimedwait_time64",
		"sigaltstack", "sigprocmask", "sigreturn", "signalfd", "signalfd4", "pause",
	},
	// Memory.
	[]string{
		"brk", "mmap", "mmap2", "munmap", "mremap", "mprotect", "madvise", "mincore", "msync",
		"mlock", "mlock2", "mlockall", "munlock", "munlockall", "remap_file_pages", "membarrier",
		"memfd_create", "memfd_secret", "mseal", "map_shadow_stack",
		"pkey_alloc", "pkey_free", "pkey_mprotect",
	},
	// Time and timers (reading the clocks; setting them needs CAP_SYS_TIME).
	[]string{
		"time", "times", "gettimeofday", "adjtimex", "clock_adjtime", "clock_adjtime64",
		"clock_getres", "clock_getres_time64", "clock_gettime", "clock_gettime64",
		"clock_nanosleep", "clock_nanosleep_time64", "nanosleep", "alarm", "getitimer", "setitimer",
		"timer_create", "timer_delete", "timer_getoverrun", "timer_gettime", "timer_gettime64",
		"timer_settime", "timer_settime64", "timerfd_create", "timerfd_gettime", "timerfd_gettime64",
		"timerfd_settime", "timerfd_settime64",
	},
	// Futexes and waiting on descriptors.
	[]string{
		"futex", "futex_time64", "futex_wait", "futex_waitv", "futex_wake", "futex_requeue",
		"poll", "ppoll", "ppoll_time64", "select", "_newselect", "pselect6", "pselect6_time64",
		"epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_wait", "epoll_wait_old",
		"epoll_pwait", "epoll_pwait2", "eventfd", "eventfd2",
		"inotify_init", "inotify_init1", "inotify_add_watch", "inotify_rm_watch", "fanotify_mark",
	},
	// Descriptors and I/O.
	[]string{
		"read", "readv", "pread64", "preadv", "preadv2", "write", "writev", "pwrite64", "pwritev", "pwritev2",
		"close", "close_range", "dup", "dup2", "dup3", "fcntl", "fcntl64", "ioctl", "flock",
		"lseek", "_llseek", "pipe", "pipe2", "splice", "tee", "vmsplice", "sendfile", "sendfile64",
		"copy_file_range", "readahead", "fadvise64", "fadvise64_64",
		"io_setup", "io_destroy", "io_submit", "io_cancel", "io_getevents", "io_pgetevents", "io_pgetevents_time64",
	},
	// Files and directories.
	[]string{
		"open", "openat", "openat2", "creat", "access", "faccessat", "faccessat2",
		"stat", "stat64", "lstat", "lstat64", "fstat", "fstat64", "fstatat64", "newfstatat", "statx",
		"statfs", "statfs64", "fstatfs", "fstatfs64", "statmount", "listmount",
		"chdir", "fchdir", "getcwd", "getdents", "getdents64", "mkdir", "mkdirat", "rmdir", "mknod", "mknodat",
		"link", "linkat", "symlink", "symlinkat", "readlink", "readlinkat", "unlink", "unlinkat",
		"rename", "renameat", "renameat2", "truncate", "truncate64", "ftruncate", "ftruncate64", "fallocate",
		"chmod", "fchmod", "fchmodat", "fchmodat2", "chown", "chown32", "fchown", "fchown32", "fchownat",
		"lchown", "lchown32", "utime", "utimes", "utimensat", "utimensat_time64", "futimesat",
		"sync", "syncfs", "fsync", "fdatasync", "sync_file_range", "name_to_handle_at", "cachestat",
		"getxattr", "getxattrat", "lgetxattr", "fgetxattr", "setxattr", "setxattrat", "lsetxattr", "fsetxattr",
		"listxattr", "listxattrat", "llistxattr", "flistxattr",
		"removexattr", "removexattrat", "lremovexattr", "fremovexattr",
	},
	// Sockets (socket itself is allowed by defaultProfile's rules).
	[]string{
		"socketpair", "socketcall", "bind", "listen", "accept", "accept4", "connect", "shutdown",
		"getsockname", "getpeername", "getsockopt", "setsockopt",
		"send", "sendto", "sendmsg", "sendmmsg", "recv", "recvfrom", "recvmsg", "recvmmsg", "recvmmsg_time64",
	},
	// System V and POSIX IPC.
	[]string{
		"ipc", "msgget", "msgctl", "msgsnd", "msgrcv", "semget", "semctl", "semop", "semtimedop", "semtimedop_time64",
		"shmget", "shmctl", "shmat", "shmdt", "mq_open", "mq_unlink", "mq_getsetattr", "mq_notify",
		"mq_timedsend", "mq_timedsend_time64", "mq_timedreceive", "mq_timedreceive_time64",
	},
	// System information.
	[]string{"uname", "sysinfo", "getrandom", "riscv_hwprobe", "uretprobe"},
)

// archAllowed are the architecture-specific calls the default profile
// allows, by GOARCH. The runtime's compiler knows x86 and ARM syscall
// tables only.
var archAllowed = map[string][]string{
	"amd64": {"arch_prctl", "modify_ldt"},
	"386":   {"modify_ldt"},
	"arm64": {"arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint", "cacheflush", "set_tls"},
	"arm":   {"arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint", "cacheflush", "set_tls"},
}

// capAllowed are the calls the default profile allows a container with a
// capability: the capability gates them in the kernel too, and the filter
// keeps the rest of the container's attack surface small. In order, since
// a call may appear under several capabilities (bpf, syslog).
var capAllowed = []struct {
	cap   string
	names []string
}{
	{"CAP_DAC_READ_SEARCH", []string{"open_by_handle_at"}},
	{"CAP_SYS_ADMIN", []string{
		"bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick",
		"lookup_dcookie", "lsm_get_self_attr", "lsm_list_modules", "lsm_set_self_attr",
		"mount", "mount_setattr", "move_mount", "open_tree", "perf_event_open", "quotactl", "quotactl_fd",
		"setdomainname", "sethostname", "setns", "syslog", "umount", "umount2", "unshare",
	}},
	{"CAP_SYS_BOOT", []string{"reboot"}},
	{"CAP_SYS_CHROOT", []string{"chroot"}},
	{"CAP_SYS_MODULE", []string{"init_module", "finit_module", "delete_module"}},
	{"CAP_SYS_PACCT", []string{"acct"}},
	{"CAP_SYS_PTRACE", []string{"kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev", "ptrace"}},
	{"CAP_SYS_RAWIO", []string{"iopl", "ioperm"}},
	{"CAP_SYS_TIME", []string{"settimeofday", "stime", "clock_settime", "clock_settime64"}},
	{"CAP_SYS_TTY_CONFIG", []string{"vhangup"}},
	{"CAP_SYS_NICE", []string{"get_mempolicy", "set_mempolicy", "set_mempolicy_home_node", "mbind"}},
	{"CAP_SYSLOG", []string{"syslog"}},
	{"CAP_BPF", []string{"bpf"}},
	{"CAP_PERFMON", []string{"perf_event_open"}},
}

// personality(2)'s values that concern the default profile.
const (
	perLinux32       = 0x0008
	uname26          = 0x0020000
	personalityQuery = 0xffffffff
)

// namespaceCloneFlags are clone's flags that make new namespaces, which
// a container without CAP_SYS_ADMIN may not (user namespaces need no
// capability, so the kernel alone would let it).
const namespaceCloneFlags = unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC | unix.CLONE_NEWUSER |
	unix.CLONE_NEWPID | unix.CLONE_NEWNET | unix.CLONE_NEWCGROUP

// defaultProfile is the RuntimeDefault profile for a container with the
// bounding set caps: Docker's default (what containerd applies too).
// Unlisted calls fail with EPERM; the filter is built for this machine's
// architecture, and calls through another ABI fail with ENOSYS (see
// seccomp.Compile).
func defaultProfile(caps []string) *specs.LinuxSeccomp {
	has := map[string]bool{}
	for _, c := range caps {
		has[strings.ToUpper(c)] = true
	}
	eperm, enosys := uint(unix.EPERM), uint(unix.ENOSYS)
	allow := func(names ...string) specs.LinuxSyscall {
		return specs.LinuxSyscall{Names: names, Action: specs.ActAllow}
	}
	p := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: &eperm,
		Syscalls: []specs.LinuxSyscall{allow(defaultAllowed...)}}
	p.Architectures = profileArches()

	if names := archAllowed[goruntime.GOARCH]; len(names) > 0 {
		p.Syscalls = append(p.Syscalls, allow(names...))
	}
	for _, g := range capAllowed {
		if has[g.cap] {
			p.Syscalls = append(p.Syscalls, allow(g.names...))
		}
	}
	admin := has["CAP_SYS_ADMIN"]
	if !admin {
		// clone3 passes its flags in memory, where a filter cannot look:
		// ENOSYS makes the C libraries fall back to clone, which it can.
		p.Syscalls = append(p.Syscalls, specs.LinuxSyscall{Names: []string{"clone3"}, Action: specs.ActErrno, ErrnoRet: &enosys})
	}

	// The rules on arguments come last. The runtime's compiler reloads the
	// syscall number before every rule that follows one on arguments, so
	// their order is free; TestDefaultProfileArgumentRulesAllowNoStrayCall
	// checks that no argument ever reaches another call's rule.
	if !admin {
		// Threads and processes, but no namespaces (mask & flags == 0). s390x, whose clone takes the flags second,
		// has no syscall table in the compiler, so the flags are the first
		// argument here.
		p.Syscalls = append(p.Syscalls, specs.LinuxSyscall{Names: []string{"clone"}, Action: specs.ActAllow,
			Args: []specs.LinuxSeccompArg{{Index: 0, Value: namespaceCloneFlags, ValueTwo: 0, Op: specs.OpMaskedEqual}}})
	}
	// Every socket but AF_VSOCK's, which reach the host's or hypervisor's
	// services past the network namespace. Docker tests "family !=
	// AF_VSOCK" on the whole 64-bit register, but the kernel reads an int,
	// so 1<<32|AF_VSOCK would pass that test and still make a vsock socket:
	// this rule also wants the upper half zero.
	p.Syscalls = append(p.Syscalls, specs.LinuxSyscall{Names: []string{"socket"}, Action: specs.ActAllow,
		Args: []specs.LinuxSeccompArg{{Index: 0, Value: unix.AF_VSOCK, Op: specs.OpNotEqual},
			{Index: 0, Value: math.MaxUint32, Op: specs.OpLessEqual}}})
	// personality: Linux, with a 32-bit uname (PER_LINUX32), a 2.6 version
	// (UNAME26) or both (Docker's five rules, four of them as one mask),
	// and the query that changes nothing.
	p.Syscalls = append(p.Syscalls,
		specs.LinuxSyscall{Names: []string{"personality"}, Action: specs.ActAllow,
			Args: []specs.LinuxSeccompArg{{Index: 0, Value: ^uint64(perLinux32 | uname26), ValueTwo: 0, Op: specs.OpMaskedEqual}}},
		specs.LinuxSyscall{Names: []string{"personality"}, Action: specs.ActAllow,
			Args: []specs.LinuxSeccompArg{{Index: 0, Value: personalityQuery, Op: specs.OpEqualTo}}})
	return p
}

// nativeArch names this machine's architecture as the spec does; the
// runtime's filter only admits calls made through it.
// profileArches are the architectures the default profile covers: the
// machine's and the one that runs beside it (32-bit programs), as Docker's
// and containerd's do; x32 is left out (the runtime refuses its calls).
func profileArches() []specs.Arch {
	switch goruntime.GOARCH {
	case "amd64":
		return []specs.Arch{specs.ArchX86_64, specs.ArchX86}
	case "arm64":
		return []specs.Arch{specs.ArchAARCH64, specs.ArchARM}
	case "386":
		return []specs.Arch{specs.ArchX86}
	case "arm":
		return []specs.Arch{specs.ArchARM}
	}
	return nil
}

// profileFile is a seccomp profile on the node: the runtime spec's
// LinuxSeccomp, which Docker's format extends with conditions on a rule
// (includes and excludes) and the older single "name". Docker's archMap
// is ignored and the architectures are passed on, though the runtime
// builds the filter for this machine's architecture only.
type profileFile struct {
	DefaultAction   specs.LinuxSeccompAction `json:"defaultAction"`
	DefaultErrnoRet *uint                    `json:"defaultErrnoRet,omitempty"`
	Architectures   []specs.Arch             `json:"architectures,omitempty"`
	Syscalls        []profileRule            `json:"syscalls,omitempty"`
}

type profileRule struct {
	specs.LinuxSyscall
	Name     string         `json:"name,omitempty"`
	Includes *ruleCondition `json:"includes,omitempty"`
	Excludes *ruleCondition `json:"excludes,omitempty"`
}

// ruleCondition is Docker's: a rule that includes it applies when the
// container has all the capabilities, the machine is one of the
// architectures (GOARCH names) and the kernel is at least minKernel; a
// rule that excludes it when any of them holds.
type ruleCondition struct {
	Caps      []string `json:"caps,omitempty"`
	Arches    []string `json:"arches,omitempty"`
	MinKernel string   `json:"minKernel,omitempty"`
}

// loadProfile reads a Localhost profile, keeps the rules that apply to a
// container with caps and checks that the runtime can compile it, so that
// a bad profile fails CreateContainer with its path in the message.
func loadProfile(path string, caps []string) (*specs.LinuxSeccomp, error) {
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("seccomp profile %q: not an absolute path", path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("seccomp profile: %w", err)
	}
	var f profileFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("seccomp profile %s: %w", path, err)
	}
	p, err := f.filter(caps)
	if err != nil {
		return nil, fmt.Errorf("seccomp profile %s: %w", path, err)
	}
	if _, err := seccomp.Compile(p); err != nil {
		return nil, fmt.Errorf("seccomp profile %s: %w", path, err)
	}
	return p, nil
}

// filter is the profile's filter for a container with caps.
func (f *profileFile) filter(caps []string) (*specs.LinuxSeccomp, error) {
	if f.DefaultAction == "" {
		return nil, errors.New("no defaultAction")
	}
	p := &specs.LinuxSeccomp{DefaultAction: f.DefaultAction, DefaultErrnoRet: f.DefaultErrnoRet,
		Architectures: f.Architectures}
	for i, r := range f.Syscalls {
		if r.Name != "" && len(r.Names) > 0 {
			return nil, fmt.Errorf("syscalls[%d]: both name and names", i)
		}
		if r.Name != "" {
			r.Names = []string{r.Name}
		}
		if len(r.Names) == 0 {
			return nil, fmt.Errorf("syscalls[%d]: no names", i)
		}
		if r.Action == "" {
			return nil, fmt.Errorf("syscalls[%d]: no action", i)
		}
		ok, err := r.applies(caps)
		if err != nil {
			return nil, fmt.Errorf("syscalls[%d]: %w", i, err)
		}
		if ok {
			p.Syscalls = append(p.Syscalls, r.LinuxSyscall)
		}
	}
	return p, nil
}

// applies tells whether a rule's includes and excludes let it apply to a
// container with caps on this machine.
func (r *profileRule) applies(caps []string) (bool, error) {
	if in := r.Includes; in != nil {
		if len(in.Arches) > 0 && !slices.Contains(in.Arches, goruntime.GOARCH) {
			return false, nil
		}
		for _, c := range in.Caps {
			if !slices.Contains(caps, c) {
				return false, nil
			}
		}
		if in.MinKernel != "" {
			ok, err := kernelAtLeast(in.MinKernel)
			if !ok || err != nil {
				return false, err
			}
		}
	}
	if ex := r.Excludes; ex != nil {
		if slices.Contains(ex.Arches, goruntime.GOARCH) {
			return false, nil
		}
		for _, c := range ex.Caps {
			if slices.Contains(caps, c) {
				return false, nil
			}
		}
		if ex.MinKernel != "" {
			ok, err := kernelAtLeast(ex.MinKernel)
			if ok || err != nil {
				return false, err
			}
		}
	}
	return true, nil
}

// kernelAtLeast compares the running kernel's version with a
// "major.minor" one.
func kernelAtLeast(version string) (bool, error) {
	want, err := majorMinor(version)
	if err != nil {
		return false, fmt.Errorf("minKernel %q: %w", version, err)
	}
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return false, err
	}
	have, err := majorMinor(unix.ByteSliceToString(u.Release[:]))
	if err != nil {
		return false, fmt.Errorf("kernel release: %w", err)
	}
	return have[0] > want[0] || have[0] == want[0] && have[1] >= want[1], nil
}

// majorMinor reads the leading "major.minor" of a kernel version.
func majorMinor(v string) ([2]int, error) {
	var out [2]int
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return out, errors.New("not major.minor")
	}
	for i := range out {
		n := parts[i]
		if j := strings.IndexFunc(n, func(r rune) bool { return r < '0' || r > '9' }); j >= 0 {
			n = n[:j]
		}
		v, err := strconv.Atoi(n)
		if err != nil {
			return out, errors.New("not major.minor")
		}
		out[i] = v
	}
	return out, nil
}

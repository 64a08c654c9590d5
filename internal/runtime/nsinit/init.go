package nsinit

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// RunInit is the container's init. It runs on one locked OS thread (the
// main package locks it in init) because setns, unshare and capability
// changes apply to the calling thread, and execve keeps that thread's view.
func RunInit() int {
	runtime.LockOSThread()
	// Not dumpable until execve: processes of the container that can see
	// us (a shared pid namespace) must not reach our host root, cwd or
	// executable through /proc/<pid>. execve makes the program dumpable.
	unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
	// Each inherited descriptor is wrapped once: a second *os.File for
	// the same number would close it from a finalizer after the number
	// has been reused.
	sync := os.NewFile(4, "sync")
	config := os.NewFile(3, "config")
	if err := initContainer(config, sync); err != nil {
		writeMessage(sync, Message{Type: "error", Msg: err.Error()})
		return 1
	}
	return 0 // not reached: initContainer execs
}

func initContainer(config, sync *os.File) error {
	// The config pipe carries the Config (EncodeConfig), then EOF.
	data, err := io.ReadAll(config)
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	cfg, err := DecodeConfig(data)
	if err != nil {
		return err
	}
	spec := cfg.Spec
	if spec == nil || spec.Process == nil {
		return errors.New("config without process")
	}
	// The console socket and the exec fifo are host paths: reach them
	// before joining another mount namespace or pivoting the root.
	console := -1
	if spec.Process.Terminal {
		switch {
		case cfg.ConsoleFD > 0:
			console = cfg.ConsoleFD // the shim takes the terminal
		case cfg.ConsoleSocket == "":
			return errors.New("process.terminal is true but no --console-socket was given")
		default:
			if console, err = connectConsoleSocket(cfg.ConsoleSocket); err != nil {
				return err
			}
		}
	}
	// The fifo must be reachable after pivot_root: keep a path fd to it.
	fifo := -1
	if cfg.ExecFIFO != "" {
		if fifo, err = unix.Open(cfg.ExecFIFO, unix.O_PATH|unix.O_CLOEXEC, 0); err != nil {
			return fmt.Errorf("open exec fifo: %w", err)
		}
	}
	// The cgroup first: its files are host paths, and everything after
	// is charged to it. The cgroup namespace is rooted where we then are.
	if err := enterCgroup(cfg.CgroupPaths); err != nil {
		return err
	}
	if err := joinNamespaces(spec); err != nil {
		return err
	}
	if err := newCgroupNamespace(spec); err != nil {
		return err
	}
	if hasNewNamespace(spec, specs.MountNamespace) {
		if err := setupRootfs(spec, cfg.Rootfs, cfg.CgroupPaths); err != nil {
			return err
		}
	}
	if hasNewNamespace(spec, specs.NetworkNamespace) {
		// A new network namespace starts with lo down; bring it up, as runc does.
		if err := loopbackUp(); err != nil {
			return err
		}
	}
	if hasNewNamespace(spec, specs.UTSNamespace) {
		if spec.Hostname != "" {
			if err := unix.Sethostname([]byte(spec.Hostname)); err != nil {
				return fmt.Errorf("sethostname: %w", err)
			}
		}
		if spec.Domainname != "" {
			if err := unix.Setdomainname([]byte(spec.Domainname)); err != nil {
				return fmt.Errorf("setdomainname: %w", err)
			}
		}
	}
	if err := applySysctls(spec); err != nil {
		return err
	}
	if hasNewNamespace(spec, specs.MountNamespace) {
		if err := hardenRootfs(spec); err != nil {
			return err
		}
	}
	if console >= 0 {
		if err := setupConsoleAt(console, hasNewNamespace(spec, specs.MountNamespace)); err != nil {
			return err
		}
	}
	if err := prepareProcess(spec.Process); err != nil {
		return err
	}
	config.Close()
	writeMessage(sync, Message{Type: "ready"})
	sync.Close()

	if fifo >= 0 {
		// Block until `start` opens the fifo for reading. This comes
		// before the user switch: a process that changed uid may no
		// longer open its own /proc/self/fd.
		w, err := unix.Open("/proc/self/fd/"+strconv.Itoa(fifo), unix.O_WRONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open exec fifo for writing: %w", err)
		}
		unix.Write(w, []byte{0})
		unix.Close(w)
		unix.Close(fifo)
	}
	if err := finishProcess(spec.Process, cfg.Seccomp); err != nil {
		// Nobody listens on the sync pipe any more: say it on stderr.
		fmt.Fprintf(os.Stderr, "skiff-runtime: %v\n", err)
		os.Exit(127)
	}
	return execProcess(spec.Process)
}

func hasNewNamespace(spec *specs.Spec, t specs.LinuxNamespaceType) bool {
	if spec.Linux == nil {
		return false
	}
	for _, ns := range spec.Linux.Namespaces {
		if ns.Type == t && ns.Path == "" {
			return true
		}
	}
	return false
}

var nsFlags = map[specs.LinuxNamespaceType]int{
	specs.NetworkNamespace: unix.CLONE_NEWNET,
	specs.IPCNamespace:     unix.CLONE_NEWIPC,
	specs.UTSNamespace:     unix.CLONE_NEWUTS,
	specs.CgroupNamespace:  unix.CLONE_NEWCGROUP,
	specs.PIDNamespace:     unix.CLONE_NEWPID,
	specs.MountNamespace:   unix.CLONE_NEWNS,
}

// joinNamespaces enters the namespaces given by path.
func joinNamespaces(spec *specs.Spec) error {
	if spec.Linux == nil {
		return nil
	}
	for _, ns := range spec.Linux.Namespaces {
		if ns.Path == "" {
			continue
		}
		switch ns.Type {
		case specs.PIDNamespace:
			continue // joined by the shim before forking us
		case specs.MountNamespace:
			// setns into a mount namespace needs a thread that shares no
			// filesystem information with the others.
			if err := unix.Unshare(unix.CLONE_FS); err != nil {
				return fmt.Errorf("unshare fs: %w", err)
			}
		}
		fd, err := unix.Open(ns.Path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open %s namespace %s: %w", ns.Type, ns.Path, err)
		}
		err = unix.Setns(fd, nsFlags[ns.Type])
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("join %s namespace %s: %w", ns.Type, ns.Path, err)
		}
		if ns.Type == specs.MountNamespace {
			if err := unix.Chdir("/"); err != nil {
				return err
			}
		}
	}
	return nil
}

// newCgroupNamespace creates the container's cgroup namespace, rooted at
// the cgroup we have entered.
func newCgroupNamespace(spec *specs.Spec) error {
	if hasNewNamespace(spec, specs.CgroupNamespace) {
		if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
			return fmt.Errorf("new cgroup namespace: %w", err)
		}
	}
	return nil
}

// cgroupV2Host reports a unified cgroup v2 hierarchy at /sys/fs/cgroup.
func cgroupV2Host() bool {
	var st unix.Statfs_t
	return unix.Statfs("/sys/fs/cgroup", &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC
}

func applySysctls(spec *specs.Spec) error {
	if spec.Linux == nil {
		return nil
	}
	for k, v := range spec.Linux.Sysctl {
		p := filepath.Join("/proc/sys", strings.ReplaceAll(k, ".", "/"))
		if err := os.WriteFile(p, []byte(v), 0); err != nil {
			return fmt.Errorf("sysctl %s=%s: %w", k, v, err)
		}
	}
	return nil
}

// setupProcessWithSeccomp applies all the process settings and the seccomp
// filter.
func setupProcessWithSeccomp(p *specs.Process, filter []unix.SockFilter) error {
	if err := prepareProcess(p); err != nil {
		return err
	}
	return finishProcess(p, filter)
}

// finishProcess switches user and capabilities and loads the seccomp
// filter. With no_new_privs the filter is loaded last, right before execve;
// without it, loading needs CAP_SYS_ADMIN, so it goes before the user and
// capabilities change (as runc does).
func finishProcess(p *specs.Process, filter []unix.SockFilter) error {
	if filter != nil && !p.NoNewPrivileges {
		if err := loadSeccomp(filter); err != nil {
			return err
		}
	}
	if err := setUser(p); err != nil {
		return err
	}
	if p.Cwd != "" {
		if err := unix.Chdir(p.Cwd); err != nil {
			return fmt.Errorf("chdir %s: %w", p.Cwd, err)
		}
	}
	if p.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("no_new_privs: %w", err)
		}
	}
	if filter != nil && p.NoNewPrivileges {
		return loadSeccomp(filter)
	}
	return nil
}

// prepareProcess applies the settings that need privileges we keep until
// the user switch: rlimits, oom_score_adj, the working directory.
func prepareProcess(p *specs.Process) error {
	for _, rl := range p.Rlimits {
		if err := setRlimit(rl); err != nil {
			return err
		}
	}
	if p.OOMScoreAdj != nil {
		if err := setOOMScoreAdj(*p.OOMScoreAdj); err != nil {
			return err
		}
	}
	if p.Cwd != "" {
		if err := os.MkdirAll(p.Cwd, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("cwd %s: %w", p.Cwd, err)
		}
	}
	// Capability names are checked now, so that create reports them.
	_, err := parseCapabilities(p.Capabilities)
	return err
}

var rlimitNames = map[string]int{
	"RLIMIT_CPU": unix.RLIMIT_CPU, "RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_DATA": unix.RLIMIT_DATA,
	"RLIMIT_STACK": unix.RLIMIT_STACK, "RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_RSS": unix.RLIMIT_RSS,
	"RLIMIT_NPROC": unix.RLIMIT_NPROC, "RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK,
	"RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_LOCKS": unix.RLIMIT_LOCKS, "RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING,
	"RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE, "RLIMIT_NICE": unix.RLIMIT_NICE, "RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO,
	"RLIMIT_RTTIME": unix.RLIMIT_RTTIME,
}

// setRlimit applies a limit, clamped to the host's hard limit when raising
// it needs CAP_SYS_RESOURCE and that is not ours.
func setRlimit(rl specs.POSIXRlimit) error {
	res, ok := rlimitNames[rl.Type]
	if !ok {
		return fmt.Errorf("unknown rlimit %q", rl.Type)
	}
	lim := unix.Rlimit{Cur: rl.Soft, Max: rl.Hard}
	err := unix.Prlimit(0, res, &lim, nil)
	if errors.Is(err, unix.EPERM) {
		var cur unix.Rlimit
		if unix.Prlimit(0, res, nil, &cur) == nil {
			lim.Max = min(lim.Max, cur.Max)
			lim.Cur = min(lim.Cur, lim.Max)
			err = unix.Prlimit(0, res, &lim, nil)
		}
	}
	if err != nil {
		return fmt.Errorf("set %s: %w", rl.Type, err)
	}
	return nil
}

// setOOMScoreAdj writes the score, clamped to the current one when a lower
// value needs CAP_SYS_RESOURCE (containerd's restrict_oom_score_adj).
func setOOMScoreAdj(v int) error {
	const path = "/proc/self/oom_score_adj"
	err := os.WriteFile(path, []byte(strconv.Itoa(v)), 0)
	if err == nil {
		return nil
	}
	cur, rerr := os.ReadFile(path)
	if rerr != nil {
		return fmt.Errorf("oom_score_adj: %w", err)
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(cur)))
	if v < n {
		return nil // keep the lowest value we are allowed
	}
	return fmt.Errorf("oom_score_adj %d: %w", v, err)
}

// setUser switches to the process's uid, gids and capabilities.
func setUser(p *specs.Process) error {
	caps, err := parseCapabilities(p.Capabilities)
	if err != nil {
		return err
	}
	if caps != nil {
		if err := caps.dropBounding(); err != nil {
			return err
		}
	}
	gids := make([]int, 0, len(p.User.AdditionalGids))
	for _, g := range p.User.AdditionalGids {
		gids = append(gids, int(g))
	}
	if err := unix.Setgroups(gids); err != nil {
		return fmt.Errorf("setgroups: %w", err)
	}
	if caps != nil && p.User.UID != 0 {
		// Keep the permitted set across setuid, then set it ourselves.
		if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("keepcaps: %w", err)
		}
	}
	// The raw system calls change this thread alone, which is all that
	// execve keeps; syscall.Setuid would stop the world to change every
	// thread of the Go runtime as well (about 0.2 ms each here).
	if _, _, e := unix.RawSyscall(unix.SYS_SETGID, uintptr(p.User.GID), 0, 0); e != 0 {
		return fmt.Errorf("setgid %d: %w", p.User.GID, e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETUID, uintptr(p.User.UID), 0, 0); e != 0 {
		return fmt.Errorf("setuid %d: %w", p.User.UID, e)
	}
	if p.User.Umask != nil {
		unix.Umask(int(*p.User.Umask))
	}
	if caps != nil {
		return caps.apply()
	}
	return nil
}

// execProcess replaces the init with the user's program.
func execProcess(p *specs.Process) error {
	if len(p.Args) == 0 {
		return errors.New("process.args is empty")
	}
	path, err := lookPath(p.Args[0], p.Env)
	if err != nil {
		return err
	}
	// Nothing of ours beyond stdio reaches the program.
	if err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return fmt.Errorf("close descriptors: %w", err)
	}
	if err := unix.Exec(path, p.Args, p.Env); err != nil {
		return fmt.Errorf("exec %s: %w", p.Args[0], err)
	}
	return nil
}

// lookPath resolves a program name with the container's PATH.
func lookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	path := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("exec: %q: executable file not found in $PATH", name)
}

// loopbackUp sets the lo interface up with SIOCSIFFLAGS.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("loopback: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback up: %w", err)
	}
	return nil
}

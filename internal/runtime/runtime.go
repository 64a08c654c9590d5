// Package runtime runs OCI runtime-spec bundles as containers: a container
// is a process that Linux namespaces isolate, cgroups limit and a pivoted
// root filesystem confines. It follows the spec's lifecycle (create, start,
// kill, delete) and keeps each container's state under a root directory,
// so that separate invocations, like runc's, can drive one container.
//
// The processes behind a container (a shim that reaps it and an init that
// sets it up) run from the small skiff-init binary (package nsinit).
package runtime

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/opencontainers/cgroups"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/skiff-sh/skiff/internal/runtime/nsinit"
	"github.com/skiff-sh/skiff/internal/runtime/seccomp"
)

// DefaultRoot is where container state lives unless --root says otherwise.
const DefaultRoot = "/run/skiff/runtime"

const execFifo = "exec.fifo"

// Error classes.
var (
	ErrNotExist     = errors.New("container does not exist")
	ErrExist        = errors.New("container already exists")
	ErrInvalidState = errors.New("invalid container state")
	ErrInvalidSpec  = errors.New("invalid bundle")
)

// Runtime manages the containers under one root directory.
type Runtime struct {
	// Root holds one directory of state per container.
	Root string
	// Binary is the skiff-init executable that runs shims and inits.
	Binary string
}

// CreateOptions are create's optional settings.
type CreateOptions struct {
	// PidFile receives the container's pid.
	PidFile string
	// Stdin, Stdout, Stderr are the container's stdio; nil means /dev/null.
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// ConsoleSocket receives the terminal's master when process.terminal
	// is set and LogPath is not.
	ConsoleSocket string
	// LogPath, when set, takes the container's stdout and stderr (or its
	// terminal, as stdout) in the CRI log format, written by its shim,
	// which also serves them to Attach; Stdout and Stderr are unused, and
	// so is ConsoleSocket: the shim keeps the terminal.
	LogPath string
	// OpenStdin (LogPath only) gives the container a stdin pipe that Attach
	// clients write to, in place of Stdin.
	OpenStdin bool
	// StdinOnce closes that pipe once the first client that attached with
	// stdin ends it or detaches, as Kubernetes' stdinOnce asks.
	StdinOnce bool
}

// validID reports whether id matches ^[A-Za-z0-9][A-Za-z0-9_.+-]*$ (by
// hand: a regexp compiled at start-up costs every command 40 µs).
func validID(id string) bool {
	for i, c := range []byte(id) {
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '_' && c != '.' && c != '+' && c != '-') {
			return false
		}
	}
	return id != ""
}

// LoadSpec reads and checks <bundle>/config.json.
func LoadSpec(bundle string) (*specs.Spec, error) {
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidSpec, err)
	}
	return decodeSpec(data, bundle)
}

// decodeSpec decodes and checks a bundle's config.json.
func decodeSpec(data []byte, bundle string) (*specs.Spec, error) {
	var spec specs.Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		return nil, fmt.Errorf("%w: config.json: %v", ErrInvalidSpec, err)
	}
	if err := validate(&spec, bundle); err != nil {
		return nil, err
	}
	return &spec, nil
}

type loadedSpec struct {
	spec *specs.Spec
	err  error
}

// decodeEarlySpec decodes only what starting the init takes (namespaces
// and cgroupsPath) into a spec that has nothing else: a few small types
// cost encoding/json a tenth of the whole spec's (0.1 ms, not 0.6). A
// config.json that is not JSON fails here.
func decodeEarlySpec(data []byte) (*specs.Spec, error) {
	var early struct {
		Linux *struct {
			Namespaces  []specs.LinuxNamespace `json:"namespaces"`
			CgroupsPath string                 `json:"cgroupsPath"`
		} `json:"linux"`
	}
	if err := json.Unmarshal(data, &early); err != nil {
		return nil, fmt.Errorf("%w: config.json: %v", ErrInvalidSpec, err)
	}
	spec := &specs.Spec{}
	if l := early.Linux; l != nil {
		spec.Linux = &specs.Linux{Namespaces: l.Namespaces, CgroupsPath: l.CgroupsPath}
	}
	return spec, nil
}

func validate(spec *specs.Spec, bundle string) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidSpec, fmt.Sprintf(format, args...))
	}
	if spec.Process == nil || len(spec.Process.Args) == 0 {
		return bad("process.args must not be empty")
	}
	if spec.Root == nil || spec.Root.Path == "" {
		return bad("root.path is required")
	}
	root := spec.Root.Path
	if !filepath.IsAbs(root) {
		root = filepath.Join(bundle, root)
	}
	if st, err := os.Stat(root); err != nil || !st.IsDir() {
		return bad("rootfs %s does not exist or is not a directory", root)
	}
	if spec.Linux != nil {
		for _, d := range spec.Linux.Devices {
			switch d.Type {
			case "c", "u", "b", "p":
			default:
				return bad("device %s: type %q is not one of c, u, b, p", d.Path, d.Type)
			}
		}
		if r := spec.Linux.Resources; r != nil {
			for _, d := range r.Devices {
				switch d.Type {
				case "", "a", "c", "b":
				default:
					return bad("linux.resources.devices: type %q is not one of a, c, b", d.Type)
				}
			}
		}
		seen := map[specs.LinuxNamespaceType]bool{}
		for _, ns := range spec.Linux.Namespaces {
			switch ns.Type {
			case specs.PIDNamespace, specs.NetworkNamespace, specs.MountNamespace, specs.IPCNamespace,
				specs.UTSNamespace, specs.CgroupNamespace:
			case specs.UserNamespace, specs.TimeNamespace:
				return bad("%s namespaces are not supported yet", ns.Type)
			default:
				return bad("unknown namespace type %q", ns.Type)
			}
			if seen[ns.Type] {
				return bad("namespace %q listed twice", ns.Type)
			}
			seen[ns.Type] = true
		}
	}
	return nil
}

// namespacePath is the path of a namespace the spec joins, if any.
func namespacePath(spec *specs.Spec, t specs.LinuxNamespaceType) string {
	if spec.Linux == nil {
		return ""
	}
	for _, ns := range spec.Linux.Namespaces {
		if ns.Type == t {
			return ns.Path
		}
	}
	return ""
}

func rootfsOf(spec *specs.Spec, bundle string) string {
	if filepath.IsAbs(spec.Root.Path) {
		return spec.Root.Path
	}
	return filepath.Join(bundle, spec.Root.Path)
}

// cloneflags are the namespaces created for the init at clone. The cgroup
// namespace is created by the init itself once it is in its cgroup.
func cloneflags(spec *specs.Spec) uintptr {
	var f uintptr
	if spec.Linux == nil {
		return 0
	}
	for _, ns := range spec.Linux.Namespaces {
		if ns.Path != "" {
			continue
		}
		switch ns.Type {
		case specs.PIDNamespace:
			f |= unix.CLONE_NEWPID
		case specs.NetworkNamespace:
			f |= unix.CLONE_NEWNET
		case specs.MountNamespace:
			f |= unix.CLONE_NEWNS
		case specs.IPCNamespace:
			f |= unix.CLONE_NEWIPC
		case specs.UTSNamespace:
			f |= unix.CLONE_NEWUTS
		}
	}
	return f
}

// lock takes an exclusive lock on the container's directory, so that
// concurrent commands on one container run one at a time.
func lock(dir string) (func(), error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { unix.Flock(int(f.Fd()), unix.LOCK_UN); f.Close() }, nil
}

// Create sets up the container from bundle: its state, cgroup, namespaces,
// root filesystem and process, stopped just before the user's program runs.
//
// The work is laid out for overlap, since each step of the chain below
// costs a process start: the shim starts first and boots while the spec is
// read; it then clones the init, which boots while the cgroups are made.
func (r *Runtime) Create(ctx context.Context, id, bundle string, opts CreateOptions) error {
	_, err := r.create(ctx, id, bundle, opts, nil)
	return err
}

// Run creates and starts a container, waits for it to exit and, unless
// keep, deletes it, as `run` without --detach does. Like runc's, this
// process is the container's parent while it runs, in place of a shim:
// that saves a process start on the way in, the init goes on to the
// program as soon as it is ready (no wait for `start`), and the exit is
// seen without a hop. It becomes a child subreaper and reaps every child
// that ends meanwhile, so it is for a process that runs one container
// (the CLI). Stdio that are not files, or a log, take a shim.
func (r *Runtime) Run(ctx context.Context, id, bundle string, opts CreateOptions, keep bool) (*nsinit.Exit, error) {
	stdio, ok := fileStdio(opts)
	if !ok || opts.LogPath != "" {
		return r.runWithShim(ctx, id, bundle, opts, keep)
	}
	// Orphans of the container (when it shares our pid namespace) are
	// reparented to us and reaped, as a shim does.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return nil, fmt.Errorf("set child subreaper: %w", err)
	}
	parent := &inProcessParent{stdio: stdio}
	rec, err := r.create(ctx, id, bundle, opts, parent)
	if err != nil {
		return nil, err
	}
	ws := nsinit.ReapUntil(parent.pid)
	if keep {
		exit := nsinit.RecordExit(parent.cfg, ws, time.Now())
		return &exit, nil
	}
	// Deleted right away: no need to record the exit in its state.
	exit := nsinit.ExitOf(parent.cfg, ws, time.Now())
	unlock, err := lock(r.dir(id))
	if errors.Is(err, os.ErrNotExist) {
		return &exit, nil // deleted meanwhile
	}
	if err != nil {
		return &exit, err
	}
	defer unlock()
	return &exit, r.remove(rec)
}

// runWithShim is Run through Create, Start and Wait.
func (r *Runtime) runWithShim(ctx context.Context, id, bundle string, opts CreateOptions, keep bool) (*nsinit.Exit, error) {
	if err := r.Create(ctx, id, bundle, opts); err != nil {
		return nil, err
	}
	if err := r.Start(id); err != nil {
		r.Delete(id, true)
		return nil, err
	}
	exit, err := r.Wait(ctx, id)
	if !keep {
		if derr := r.Delete(id, true); err == nil {
			err = derr
		}
	}
	return exit, err
}

// inProcessParent makes the calling process the parent of a container's
// init (Run), instead of a shim.
type inProcessParent struct {
	stdio nsinit.InitStdio
	// Set by create: what a shim would have been told, and the init's pid.
	cfg nsinit.ShimConfig
	pid int
}

// fileStdio is opts' stdio when each is a file or nil.
func fileStdio(opts CreateOptions) (nsinit.InitStdio, bool) {
	var s nsinit.InitStdio
	ok := true
	file := func(v any, dst **os.File) {
		switch f := v.(type) {
		case nil:
		case *os.File:
			*dst = f
		default:
			ok = false
		}
	}
	file(opts.Stdin, &s.Stdin)
	file(opts.Stdout, &s.Stdout)
	file(opts.Stderr, &s.Stderr)
	return s, ok
}

// create is Create; with parent, the calling process starts the init and
// stays its parent (Run) instead of a shim.
func (r *Runtime) create(ctx context.Context, id, bundle string, opts CreateOptions, parent *inProcessParent) (_ *record, err error) {
	if !validID(id) {
		return nil, fmt.Errorf("%w: invalid container id %q", ErrInvalidSpec, id)
	}
	bundle, err = filepath.Abs(bundle)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidSpec, err)
	}
	// The whole spec is decoded and checked from the start, beside the
	// rest: the init is started as soon as its namespaces and cgroup are
	// known (when we are its parent: a shim needs the whole spec first).
	loaded := make(chan loadedSpec, 1)
	go func() {
		spec, err := decodeSpec(data, bundle)
		loaded <- loadedSpec{spec, err}
	}()
	if err := os.MkdirAll(r.Root, 0o700); err != nil {
		return nil, err
	}
	dir := r.dir(id)
	if err := os.Mkdir(dir, 0o700); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("container %q: %w", id, ErrExist)
		}
		return nil, err
	}
	unlock, err := lock(dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	defer unlock()
	var shim *exec.Cmd
	var mgr cgroups.Manager
	var unified string // the container's cgroup v2 directory, once made
	defer func() {
		if err == nil {
			return
		}
		// Leave nothing behind: processes, cgroup, state.
		if shim != nil && shim.Process != nil {
			shim.Process.Kill()
			shim.Wait()
		}
		if parent != nil && parent.pid > 0 {
			unix.Kill(parent.pid, unix.SIGKILL)
			nsinit.ReapUntil(parent.pid)
		}
		if mgr != nil {
			killCgroup(mgr.GetPaths())
			mgr.Destroy()
		} else if unified != "" {
			os.Remove(unified)
		}
		os.RemoveAll(dir)
	}()

	var p pipes
	defer p.close()
	if err = p.open(); err != nil {
		return nil, err
	}
	if parent == nil {
		shim = exec.Command(r.Binary, "shim")
		shim.Args[0] = "skiff-shim"
		shim.Env = []string{}
		shim.ExtraFiles = []*os.File{p.configR, p.syncW, p.reportW, p.shimR}
		shim.Stdin, shim.Stdout, shim.Stderr = opts.Stdin, opts.Stdout, opts.Stderr
		// The shim outlives this command: its own session, no death signal.
		shim.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err = shim.Start(); err != nil {
			return nil, fmt.Errorf("start shim: %w", err)
		}
		p.closeChildEnds()
	}

	early, err := decodeEarlySpec(data)
	if err != nil {
		return nil, err
	}
	cgPath := cgroupConfig(id, early).Path
	if cgroupExists(cgPath) {
		// Killing and removing it on a failure would hit whatever uses it.
		return nil, fmt.Errorf("%w: cgroup %s already exists", ErrExist, cgPath)
	}
	// The init is cloned into the unified cgroup (v2, or its part of a
	// hybrid host), so that one exists first; the rest is made while the
	// init starts up.
	if unified, err = makeUnifiedCgroup(id, early); err != nil {
		return nil, err
	}
	shimCfg := nsinit.ShimConfig{StateDir: dir, Cloneflags: cloneflags(early), CgroupV2: cgroups.IsCgroup2UnifiedMode(),
		PidNamespace: namespacePath(early, specs.PIDNamespace), CloneIntoCgroup: unified, LogPath: opts.LogPath,
		OpenStdin: opts.OpenStdin, StdinOnce: opts.StdinOnce}
	if parent != nil {
		parent.pid, err = nsinit.StartInit(r.Binary, shimCfg, p.configR, p.syncW, parent.stdio)
		p.closeChildEnds()
		if err != nil {
			return nil, fmt.Errorf("start container init: %w", err)
		}
	}

	ls := <-loaded
	spec := ls.spec
	if ls.err != nil {
		return nil, ls.err
	}
	if spec.Process.Terminal && opts.ConsoleSocket == "" && opts.LogPath == "" {
		return nil, fmt.Errorf("%w: process.terminal is true: --console-socket is required", ErrInvalidSpec)
	}
	if opts.OpenStdin && opts.LogPath == "" {
		return nil, fmt.Errorf("%w: a stdin held for attach needs a log path", ErrInvalidSpec)
	}
	// With a log the shim holds the terminal (nsinit.ShimConfig.Terminal).
	shimTerminal := spec.Process.Terminal && opts.LogPath != ""
	var filter []unix.SockFilter
	if spec.Linux != nil {
		if filter, err = seccomp.Compile(spec.Linux.Seccomp); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidSpec, err)
		}
	}
	// The init waits on the fifo for `start`; Run's starts straight away.
	fifo := ""
	if parent == nil {
		fifo = filepath.Join(dir, execFifo)
		if err = unix.Mkfifo(fifo, 0o622); err != nil {
			return nil, fmt.Errorf("exec fifo: %w", err)
		}
	}
	cg := cgroupConfig(id, spec)
	if mgr, err = newCgroupManager(cg, nil); err != nil {
		return nil, err
	}
	paths := mgr.GetPaths()
	shimCfg.MemoryCgroup, shimCfg.Terminal = memoryPath(mgr), shimTerminal
	if parent == nil {
		if err = p.send(p.shimW, nsinit.EncodeShimConfig(&shimCfg), "shim"); err != nil {
			return nil, err
		}
	} else {
		parent.cfg = shimCfg // we are the shim
	}
	// Encoded while the init starts.
	initCfg := nsinit.Config{Spec: spec, Rootfs: rootfsOf(spec, bundle), ExecFIFO: fifo,
		ConsoleSocket: opts.ConsoleSocket, CgroupPaths: paths, Seccomp: filter}
	if shimTerminal {
		initCfg.ConsoleSocket, initCfg.ConsoleFD = "", nsinit.ShimConsoleFD
	}
	initData := nsinit.EncodeConfig(&initCfg)
	// The rest of the cgroup is made while the init starts up.
	if err = mgr.Apply(-1); err != nil {
		return nil, fmt.Errorf("create cgroup %s: %w", cg.Path, err)
	}
	if err = mgr.Set(cg.Resources); err != nil {
		return nil, fmt.Errorf("set cgroup limits: %w", err)
	}
	// The init enters its cgroup itself (see nsinit.enterCgroup), so the
	// configuration, sent once the cgroups exist, is all it waits for.
	if err = p.send(p.configW, initData, "container init"); err != nil {
		return nil, err
	}

	pid, shimPid := 0, os.Getpid()
	if parent != nil {
		pid = parent.pid
	} else {
		msg, err := readMessage(p.reportR)
		if err != nil {
			return nil, fmt.Errorf("shim: %w", err)
		}
		if msg.Type == "error" {
			return nil, fmt.Errorf("shim: %s", msg.Msg)
		}
		pid, shimPid = msg.Pid, shim.Process.Pid
	}
	msg, err := readMessage(p.syncR)
	if err != nil {
		return nil, fmt.Errorf("container init: %w", err)
	}
	if msg.Type == "error" {
		return nil, fmt.Errorf("container init: %s", msg.Msg)
	}
	start, err := processStartTime(pid)
	if err != nil {
		return nil, fmt.Errorf("container init exited: %w", err)
	}
	rec := &record{ID: id, Bundle: bundle, Pid: pid, ShimPid: shimPid, StartTime: start,
		Created: time.Now().UTC(), Annotations: spec.Annotations, CgroupPaths: paths,
		CgroupPath: cg.Path, Rootfs: rootfsOf(spec, bundle), Seccomp: filter, Capabilities: spec.Process.Capabilities}
	if err = r.writeRecord(rec); err != nil {
		return nil, err
	}
	if opts.PidFile != "" {
		if err = writeFileAtomic(opts.PidFile, []byte(strconv.Itoa(pid))); err != nil {
			return nil, err
		}
	}
	if shim != nil {
		// The shim is not ours to wait for; release it.
		shim.Process.Release()
		shim = nil
	}
	return rec, nil
}

// pipes connect Create with the shim and the init (see package nsinit for
// the numbers they get there).
type pipes struct {
	configR, configW *os.File // the init's Config
	syncR, syncW     *os.File // the init's report
	reportR, reportW *os.File // the shim's report
	shimR, shimW     *os.File // the shim's ShimConfig
}

func (p *pipes) open() error {
	for _, pair := range []struct{ r, w **os.File }{
		{&p.configR, &p.configW}, {&p.syncR, &p.syncW}, {&p.reportR, &p.reportW}, {&p.shimR, &p.shimW},
	} {
		r, w, err := os.Pipe()
		if err != nil {
			return err
		}
		*pair.r, *pair.w = r, w
	}
	return nil
}

// closeChildEnds closes the ends that only the shim and the init use.
func (p *pipes) closeChildEnds() {
	for _, f := range []*os.File{p.configR, p.syncW, p.reportW, p.shimR} {
		f.Close()
	}
}

func (p *pipes) close() {
	for _, f := range []*os.File{p.configR, p.configW, p.syncR, p.syncW, p.reportR, p.reportW, p.shimR, p.shimW} {
		if f != nil {
			f.Close()
		}
	}
}

// send writes a line to w and closes it. A reader that has gone has said
// why on its report pipe.
func (p *pipes) send(w *os.File, line []byte, who string) error {
	_, err := w.Write(line)
	w.Close()
	if err == nil {
		return nil
	}
	for _, r := range []*os.File{p.syncR, p.reportR} {
		if m, rerr := readMessage(r); rerr == nil && m.Type == "error" {
			return fmt.Errorf("%s: %s", who, m.Msg)
		}
	}
	return fmt.Errorf("send config to %s: %w", who, err)
}

func readMessage(r io.Reader) (nsinit.Message, error) {
	var m nsinit.Message
	line, err := bufio.NewReader(r).ReadBytes('\n')
	if err != nil {
		if len(line) == 0 {
			return m, errors.New("exited before reporting")
		}
	}
	if err := json.Unmarshal(line, &m); err != nil {
		return m, fmt.Errorf("bad message %q: %w", line, err)
	}
	return m, nil
}

// Start runs the user's program of a created container.
func (r *Runtime) Start(id string) error {
	rec, unlock, err := r.locked(id)
	if err != nil {
		return err
	}
	defer unlock()
	st, _ := r.status(rec)
	if st != StatusCreated {
		return fmt.Errorf("container %q is %s, not created: %w", id, st, ErrInvalidState)
	}
	fifo := filepath.Join(r.dir(id), execFifo)
	// Non-blocking, watching the init: a blocking open would hang for
	// ever (with the lock held) if the init died meanwhile.
	fd, err := unix.Open(fifo, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open exec fifo: %w", err)
	}
	defer unix.Close(fd)
	buf := make([]byte, 1)
	for {
		n, err := unix.Read(fd, buf)
		if n == 1 {
			break
		}
		if err != nil && err != unix.EAGAIN {
			return fmt.Errorf("read exec fifo: %w", err)
		}
		if !alive(rec.Pid, rec.StartTime) {
			return fmt.Errorf("container %q: init exited before start", id)
		}
		unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 20)
	}
	return os.Remove(fifo)
}

func (r *Runtime) locked(id string) (*record, func(), error) {
	dir := r.dir(id)
	unlock, err := lock(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil, fmt.Errorf("container %q: %w", id, ErrNotExist)
		}
		return nil, nil, err
	}
	rec, err := r.readRecord(id)
	if err != nil {
		unlock()
		return nil, nil, err
	}
	return rec, unlock, nil
}

// State reports a container's state.
func (r *Runtime) State(id string) (*State, error) {
	rec, err := r.readRecord(id)
	if err != nil {
		return nil, err
	}
	return r.stateOf(rec), nil
}

func (r *Runtime) stateOf(rec *record) *State {
	st, exit := r.status(rec)
	s := &State{State: specs.State{Version: specs.Version, ID: rec.ID, Status: specs.ContainerState(st),
		Bundle: rec.Bundle, Annotations: rec.Annotations}, Created: rec.Created, Exit: exit}
	if st != StatusStopped {
		s.Pid = rec.Pid
	}
	return s
}

// List reports every container under the root.
func (r *Runtime) List() ([]*State, error) {
	entries, err := os.ReadDir(r.Root)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []*State
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if rec, err := r.readRecord(e.Name()); err == nil {
			out = append(out, r.stateOf(rec))
		}
	}
	return out, nil
}

// Kill sends sig to the container's init, or with all to every process in
// its cgroup.
func (r *Runtime) Kill(id string, sig unix.Signal, all bool) error {
	rec, err := r.readRecord(id)
	if err != nil {
		return err
	}
	st, _ := r.status(rec)
	if st == StatusStopped {
		return fmt.Errorf("container %q is not running: %w", id, ErrInvalidState)
	}
	if all {
		pids, err := cgroupPids(rec.CgroupPaths)
		if err != nil {
			return err
		}
		for _, p := range pids {
			unix.Kill(p, sig)
		}
		return nil
	}
	return unix.Kill(rec.Pid, sig)
}

func (r *Runtime) manager(rec *record) (cgroups.Manager, error) {
	return newCgroupManager(&cgroups.Cgroup{Path: rec.CgroupPath, Resources: &cgroups.Resources{SkipDevices: true}}, rec.CgroupPaths)
}

// Delete removes a stopped container (or, with force, any container after
// killing it): its processes, cgroup and state.
func (r *Runtime) Delete(id string, force bool) error {
	rec, unlock, err := r.locked(id)
	if err != nil {
		return err
	}
	defer unlock()
	st, _ := r.status(rec)
	if st != StatusStopped && st != StatusCreated && !force {
		return fmt.Errorf("container %q is %s: stop it or use --force: %w", id, st, ErrInvalidState)
	}
	return r.remove(rec)
}

// remove ends whatever is left of a container and removes its cgroup and
// state; the caller holds its lock or is its parent (Run).
func (r *Runtime) remove(rec *record) error {
	mgr, err := r.manager(rec)
	if err != nil {
		return err
	}
	killCgroup(rec.CgroupPaths)
	if alive(rec.Pid, rec.StartTime) {
		unix.Kill(rec.Pid, unix.SIGKILL)
	}
	if rec.ShimPid != os.Getpid() { // Run's container: we are its parent
		// The shim records the exit and goes; wait for it briefly so
		// that no process of ours outlives the delete.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		waitExit(ctx, rec.ShimPid)
		cancel()
	}
	if err := destroyCgroup(mgr); err != nil {
		return err
	}
	return removeState(r.dir(rec.ID))
}

// removeState removes a container's state directory: usually state.json
// and perhaps exit.json, taken one by one (os.RemoveAll would first try
// the directory, then list it).
func removeState(dir string) error {
	for _, name := range []string{"state.json", "exit.json"} {
		unix.Unlink(filepath.Join(dir, name))
	}
	if unix.Rmdir(dir) == nil {
		return nil
	}
	return os.RemoveAll(dir)
}

// cgroupPids lists every process in the container's cgroup, read from one
// controller that every container has.
func cgroupPids(paths map[string]string) ([]int, error) {
	for _, c := range []string{"", "pids", "memory", "cpu"} {
		if p, ok := paths[c]; ok && p != "" {
			if _, err := os.Stat(p); err == nil {
				return cgroups.GetAllPids(p)
			}
		}
	}
	return nil, errors.New("the container's cgroup is gone")
}

// killCgroup SIGKILLs everything in the container's cgroup.
func killCgroup(paths map[string]string) {
	for range 50 {
		pids, err := cgroupPids(paths)
		if err != nil || len(pids) == 0 {
			return
		}
		for _, p := range pids {
			unix.Kill(p, unix.SIGKILL)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// destroyCgroup removes the cgroup, retrying while the last processes leave.
func destroyCgroup(mgr cgroups.Manager) error {
	var err error
	for range 100 {
		if err = mgr.Destroy(); err == nil {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("remove cgroup: %w", err)
}

// gone reports whether pid has exited; a zombie (an unreaped child of the
// caller, as the shim is in `run`) counts as exited.
func gone(pid int) bool {
	if unix.Kill(pid, 0) != nil {
		return true
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	return err != nil || statField(string(data), 3) == "Z"
}

// Wait blocks until the container has stopped and returns how it exited.
func (r *Runtime) Wait(ctx context.Context, id string) (*nsinit.Exit, error) {
	rec, err := r.readRecord(id)
	if err != nil {
		return nil, err
	}
	if e := r.readExit(id); e != nil {
		return e, nil
	}
	// The shim exits right after recording the exit: wait for the shim.
	waitExit(ctx, rec.ShimPid)
	if e := r.readExit(id); e != nil {
		return e, nil
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	// The shim was killed: the container may still run; wait for it.
	if alive(rec.Pid, rec.StartTime) {
		waitExit(ctx, rec.Pid)
	}
	return nil, fmt.Errorf("container %q: its shim died, so its exit status is unknown", id)
}

// waitExit blocks until pid has exited (or ctx ends), with a pidfd so that
// it works for processes that are not our children, without polling.
func waitExit(ctx context.Context, pid int) {
	if pid <= 0 || gone(pid) {
		return
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		for !gone(pid) && ctx.Err() == nil {
			time.Sleep(2 * time.Millisecond)
		}
		return
	}
	defer unix.Close(fd)
	for ctx.Err() == nil {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 100)
		if n > 0 || (err != nil && err != unix.EINTR) || gone(pid) {
			return
		}
	}
}

// processStartTime reads field 22 of /proc/PID/stat.
func processStartTime(pid int) (uint64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(statField(string(data), 22), 10, 64)
}

// statField returns the n-th (1-based) field of a /proc/PID/stat line,
// skipping the command name, which may contain spaces.
func statField(stat string, n int) string {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return ""
	}
	f := strings.Fields(stat[i+1:])
	if n-3 < 0 || n-3 >= len(f) {
		return ""
	}
	return f[n-3]
}

func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// SignalShim signals a container's shim (SIGUSR1 makes it reopen the
// container's log file).
func (r *Runtime) SignalShim(id string, sig unix.Signal) error {
	rec, err := r.readRecord(id)
	if err != nil {
		return err
	}
	if gone(rec.ShimPid) {
		return fmt.Errorf("container %q: its shim has exited", id)
	}
	return unix.Kill(rec.ShimPid, sig)
}

package nsinit

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// RunShim is the shim process: it becomes a child subreaper, starts the
// init in the container's namespaces, reports the init's pid, then waits
// for the init to end and records how it ended in <state>/exit.json. With
// a log path it also holds the container's stdio (or terminal), logs its
// output and serves it on the attach socket (see the package comment).
func RunShim() int {
	report := os.NewFile(5, "report")
	fail := func(err error) int {
		writeMessage(report, Message{Type: "error", Msg: err.Error()})
		return 1
	}
	// The runtime reads the spec while we start, then sends our part.
	data, _ := io.ReadAll(os.NewFile(6, "shim-config"))
	if len(data) == 0 {
		return 1 // the runtime gave up: nothing to do
	}
	decoded, err := DecodeShimConfig(data)
	if err != nil {
		return fail(fmt.Errorf("bad shim config: %w", err))
	}
	cfg := *decoded
	// Orphans of the container (when it shares our pid namespace) are
	// reparented to us and reaped below.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fail(fmt.Errorf("set child subreaper: %w", err))
	}
	self, err := os.Executable()
	if err != nil {
		return fail(err)
	}
	stdio := InitStdio{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
	var log *criLog
	var attach *attachServer
	if cfg.LogPath != "" {
		if log, err = openCRILog(cfg.LogPath); err != nil {
			return fail(fmt.Errorf("open container log: %w", err))
		}
		if attach, err = listenAttach(filepath.Join(cfg.StateDir, AttachSocket), cfg.StdinOnce); err != nil {
			return fail(err)
		}
		if stdio, err = heldStdio(cfg, log, attach); err != nil {
			return fail(err)
		}
	}
	config, sync := os.NewFile(3, "config"), os.NewFile(4, "sync")
	pid, err := StartInit(self, cfg, config, sync, stdio)
	if err != nil {
		return fail(fmt.Errorf("start container init: %w", err))
	}
	config.Close()
	sync.Close()
	// Only the container holds these ends now: its exit ends the pipes.
	for _, f := range stdio.childEnds {
		f.Close()
	}
	if stdio.console != nil {
		// Before reporting: once create returns, the terminal is ours.
		master, err := RecvConsole(stdio.console)
		stdio.console.Close()
		if err == nil {
			attach.setStdin(master, master)
			log.follow("stdout", master, attach.output(AttachStdout), nil)
		}
		// Otherwise the init failed before making its terminal, and
		// says why on the sync pipe.
	}
	writeMessage(report, Message{Type: "pid", Pid: pid})
	report.Close()

	status := ReapUntil(pid)
	exited := time.Now()
	if log != nil {
		log.drain(2 * time.Second)
	}
	RecordExit(cfg, status, exited)
	if attach != nil {
		// The output is all sent: attached clients read the end.
		attach.shutdown(time.Second)
	}
	return 0
}

// InitStdio is the init's stdio as its parent hands it over.
type InitStdio struct {
	// Stdin, Stdout, Stderr are the init's fds 0-2; nil is /dev/null.
	Stdin, Stdout, Stderr *os.File
	// consoleChild is the init's end of the socketpair the terminal's
	// master comes back over (its ShimConsoleFD); console is ours.
	consoleChild, console *os.File
	// childEnds are closed once the init runs.
	childEnds []*os.File
}

// heldStdio is the stdio of a container whose shim holds it: pipes whose
// output goes to the log and attached clients, and a stdin pipe they write
// to when asked; or, for a terminal, /dev/null until the init replaces it
// with the terminal, whose master the shim takes over a socketpair.
func heldStdio(cfg ShimConfig, log *criLog, attach *attachServer) (InitStdio, error) {
	var s InitStdio
	if cfg.Terminal {
		pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return s, fmt.Errorf("console socketpair: %w", err)
		}
		s.console = os.NewFile(uintptr(pair[0]), "console")
		s.consoleChild = os.NewFile(uintptr(pair[1]), "console-child")
		s.childEnds = []*os.File{s.consoleChild}
		return s, nil
	}
	var err error
	if s.Stdout, err = log.pipe("stdout", attach.output(AttachStdout)); err != nil {
		return s, err
	}
	if s.Stderr, err = log.pipe("stderr", attach.output(AttachStderr)); err != nil {
		return s, err
	}
	s.childEnds = []*os.File{s.Stdout, s.Stderr}
	if cfg.OpenStdin {
		r, w, err := os.Pipe()
		if err != nil {
			return s, err
		}
		s.Stdin = r
		s.childEnds = append(s.childEnds, r)
		attach.setStdin(w, nil)
	} else {
		s.Stdin = os.Stdin
	}
	return s, nil
}

// StartInit starts the container's init in its new namespaces, and on a
// cgroup v2 host straight in its cgroup; a kernel without clone3's
// CLONE_INTO_CGROUP (before 5.7) gets an init that moves itself. self is
// the skiff-init executable; config and sync become the init's fds 3 and 4.
// It forks with syscall.ForkExec rather than os/exec, which would first
// fork a throwaway child to probe for pidfd support.
func StartInit(self string, cfg ShimConfig, config, sync *os.File, stdio InitStdio) (int, error) {
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		return 0, err
	}
	defer devNull.Close()
	fd := func(f *os.File) uintptr {
		if f == nil {
			return devNull.Fd()
		}
		return f.Fd()
	}
	files := []uintptr{fd(stdio.Stdin), fd(stdio.Stdout), fd(stdio.Stderr), config.Fd(), sync.Fd()}
	if stdio.consoleChild != nil {
		files = append(files, stdio.consoleChild.Fd()) // ShimConsoleFD
	}
	start := func(cgroupFD int) (int, error) {
		attr := &syscall.ProcAttr{Env: []string{}, Files: files,
			Sys: &syscall.SysProcAttr{Cloneflags: cfg.Cloneflags}}
		if cgroupFD >= 0 {
			attr.Sys.UseCgroupFD, attr.Sys.CgroupFD = true, cgroupFD
		}
		var pid int
		err := StartInPidNamespace(cfg.PidNamespace, func() (err error) {
			pid, err = syscall.ForkExec(self, []string{"skiff-init", "init"}, attr)
			return err
		})
		return pid, err
	}
	// The descriptors above are plain numbers: keep their files open.
	defer runtime.KeepAlive(stdio)
	defer runtime.KeepAlive(config)
	defer runtime.KeepAlive(sync)
	if cfg.CloneIntoCgroup != "" {
		cgroup, err := unix.Open(cfg.CloneIntoCgroup, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return 0, fmt.Errorf("open cgroup: %w", err)
		}
		defer unix.Close(cgroup)
		pid, err := start(cgroup)
		if err == nil || !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.E2BIG) {
			return pid, err
		}
	}
	return start(-1)
}

// RecordExit writes how the init ended (ExitOf) to <state>/exit.json,
// where the runtime reads it, and returns it.
func RecordExit(cfg ShimConfig, status unix.WaitStatus, at time.Time) Exit {
	exit := ExitOf(cfg, status, at)
	data, _ := json.Marshal(exit)
	tmp := filepath.Join(cfg.StateDir, ".exit.json")
	if err := os.WriteFile(tmp, data, 0o644); err == nil {
		os.Rename(tmp, filepath.Join(cfg.StateDir, "exit.json"))
	}
	return exit
}

// ExitOf is how the init ended: its wait status, whether the memory
// cgroup killed a process, and when (at) the exit was seen.
func ExitOf(cfg ShimConfig, status unix.WaitStatus, at time.Time) Exit {
	exit := Exit{At: at.UTC().Format(time.RFC3339Nano)}
	switch {
	case status.Signaled():
		exit.Signal = int(status.Signal())
		exit.Code = 128 + exit.Signal
	default:
		exit.Code = status.ExitStatus()
	}
	exit.OOMKilled = oomKilled(cfg)
	return exit
}

// ReapUntil waits for every child, returning the status of pid when it ends.
func ReapUntil(pid int) unix.WaitStatus {
	for {
		var ws unix.WaitStatus
		got, err := unix.Wait4(-1, &ws, 0, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return ws
		}
		if got == pid {
			// Reap whatever else has already ended, without blocking.
			for {
				var other unix.WaitStatus
				if n, err := unix.Wait4(-1, &other, unix.WNOHANG, nil); n <= 0 || err != nil {
					break
				}
			}
			return ws
		}
	}
}

// oomKilled reads the memory cgroup's OOM-kill counter.
func oomKilled(cfg ShimConfig) bool {
	if cfg.MemoryCgroup == "" {
		return false
	}
	file, key := "memory.oom_control", "oom_kill"
	if cfg.CgroupV2 {
		file = "memory.events"
	}
	data, err := os.ReadFile(filepath.Join(cfg.MemoryCgroup, file))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == key {
			n, _ := strconv.Atoi(f[1])
			return n > 0
		}
	}
	return false
}

func writeMessage(f *os.File, m Message) {
	// The messages of every container start are written by hand: spare
	// the shim and the init encoding/json's first-use cost.
	switch {
	case m == (Message{Type: "ready"}):
		f.Write([]byte(`{"type":"ready"}` + "\n"))
		return
	case m.Type == "pid" && m.Msg == "":
		f.Write([]byte(`{"type":"pid","pid":` + strconv.Itoa(m.Pid) + "}\n"))
		return
	}
	data, _ := json.Marshal(m)
	f.Write(append(data, '\n'))
}

// StartInPidNamespace runs start, which forks, in the pid namespace at
// path pidns (none: ours). setns of a pid namespace only applies to the
// calling thread's future children, so it runs on a thread of its own,
// discarded afterwards.
func StartInPidNamespace(pidns string, start func() error) error {
	if pidns == "" {
		return start()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		fd, err := unix.Open(pidns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("open pid namespace %s: %w", pidns, err)
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWPID); err != nil {
			errc <- fmt.Errorf("join pid namespace %s: %w", pidns, err)
			return
		}
		errc <- start()
	}()
	return <-errc
}

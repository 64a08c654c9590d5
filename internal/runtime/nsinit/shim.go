package nsinit

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
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
// for the init to end and records how it ended in <state>/exit.json.
func RunShim() int {
	report := os.NewFile(5, "report")
	fail := func(err error) int {
		writeMessage(report, Message{Type: "error", Msg: err.Error()})
		return 1
	}
	// The runtime reads the spec while we start, then sends our part.
	var cfg ShimConfig
	line, err := bufio.NewReader(os.NewFile(6, "shim-config")).ReadBytes('\n')
	if len(line) == 0 {
		return 1 // the runtime gave up: nothing to do
	}
	if err := json.Unmarshal(line, &cfg); err != nil {
		return fail(fmt.Errorf("bad shim config: %w", err))
	}
	// Orphans of the container (when it shares our pid namespace) are
	// reparented to us and reaped below.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fail(fmt.Errorf("set child subreaper: %w", err))
	}
	self, err := os.Executable()
	if err != nil {
		return fail(err)
	}
	stdout, stderr := os.Stdout, os.Stderr
	var log *criLog
	if cfg.LogPath != "" {
		if log, err = openCRILog(cfg.LogPath); err != nil {
			return fail(fmt.Errorf("open container log: %w", err))
		}
		if stdout, err = log.pipe("stdout"); err != nil {
			return fail(err)
		}
		if stderr, err = log.pipe("stderr"); err != nil {
			return fail(err)
		}
	}
	config, sync := os.NewFile(3, "config"), os.NewFile(4, "sync")
	cmd, err := startInit(self, cfg, config, sync, stdout, stderr)
	if err != nil {
		return fail(fmt.Errorf("start container init: %w", err))
	}
	config.Close()
	sync.Close()
	if log != nil {
		// Only the container holds the write ends now: its exit ends them.
		stdout.Close()
		stderr.Close()
	}
	writeMessage(report, Message{Type: "pid", Pid: cmd.Process.Pid})
	report.Close()

	status := reapUntil(cmd.Process.Pid)
	exit := Exit{At: time.Now().UTC().Format(time.RFC3339Nano)}
	switch {
	case status.Signaled():
		exit.Signal = int(status.Signal())
		exit.Code = 128 + exit.Signal
	default:
		exit.Code = status.ExitStatus()
	}
	exit.OOMKilled = oomKilled(cfg)
	if log != nil {
		log.drain(2 * time.Second)
	}
	data, _ := json.Marshal(exit)
	tmp := filepath.Join(cfg.StateDir, ".exit.json")
	if err := os.WriteFile(tmp, data, 0o644); err == nil {
		os.Rename(tmp, filepath.Join(cfg.StateDir, "exit.json"))
	}
	return 0
}

// startInit starts the container's init in its new namespaces, and on a
// cgroup v2 host straight in its cgroup; a kernel without clone3's
// CLONE_INTO_CGROUP (before 5.7) gets an init that moves itself.
func startInit(self string, cfg ShimConfig, config, sync, stdout, stderr *os.File) (*exec.Cmd, error) {
	command := func(cgroupFD int) *exec.Cmd {
		cmd := exec.Command(self, "init")
		cmd.Args[0] = "skiff-init"
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, stdout, stderr
		cmd.ExtraFiles = []*os.File{config, sync}
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: cfg.Cloneflags}
		if cgroupFD >= 0 {
			cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, cgroupFD
		}
		cmd.Env = []string{}
		return cmd
	}
	if cfg.CloneIntoCgroup != "" {
		fd, err := unix.Open(cfg.CloneIntoCgroup, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("open cgroup: %w", err)
		}
		defer unix.Close(fd)
		cmd := command(fd)
		err = StartInPidNamespace(cmd, cfg.PidNamespace)
		if err == nil || !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.E2BIG) {
			return cmd, err
		}
	}
	cmd := command(-1)
	return cmd, StartInPidNamespace(cmd, cfg.PidNamespace)
}

// reapUntil waits for every child, returning the status of pid when it ends.
func reapUntil(pid int) unix.WaitStatus {
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
	data, _ := json.Marshal(m)
	f.Write(append(data, '\n'))
}

// StartInPidNamespace starts cmd in the pid namespace at path pidns (none:
// ours). setns of a pid namespace only applies to the calling thread's
// future children, so it runs on a thread of its own, discarded afterwards.
func StartInPidNamespace(cmd *exec.Cmd, pidns string) error {
	if pidns == "" {
		return cmd.Start()
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
		errc <- cmd.Start()
	}()
	return <-errc
}

package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/skiff-sh/skiff/internal/runtime/nsinit"
)

// ExecOptions are exec's settings.
type ExecOptions struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Console, when process.terminal is set, receives the terminal's
	// master (the caller proxies it).
	Console func(master *os.File)
	// Detach returns once the process runs instead of waiting for it.
	Detach  bool
	PidFile string
}

// Exec runs another process in a running container: in its namespaces and
// cgroup, with the given process settings. Without Detach it waits and
// returns the exit code (128+signal when killed).
func (r *Runtime) Exec(ctx context.Context, id string, proc *specs.Process, opts ExecOptions) (int, error) {
	rec, err := r.readRecord(id)
	if err != nil {
		return -1, err
	}
	if st, _ := r.status(rec); st != StatusRunning && st != StatusCreated {
		return -1, fmt.Errorf("container %q is %s: %w", id, st, ErrInvalidState)
	}
	if proc == nil || len(proc.Args) == 0 {
		return -1, fmt.Errorf("%w: exec needs a command", ErrInvalidSpec)
	}
	configR, configW, err := os.Pipe()
	if err != nil {
		return -1, err
	}
	defer configR.Close()
	defer configW.Close()
	syncR, syncW, err := os.Pipe()
	if err != nil {
		return -1, err
	}
	defer syncR.Close()
	defer syncW.Close()
	cmd := exec.Command(r.Binary, "exec-init")
	cmd.Args[0] = "skiff-exec"
	cmd.Env = []string{}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = opts.Stdin, opts.Stdout, opts.Stderr
	cmd.ExtraFiles = []*os.File{configR, syncW}
	consoleFD := -1
	var consoleParent, consoleChild *os.File
	if proc.Terminal {
		pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return -1, err
		}
		consoleParent = os.NewFile(uintptr(pair[0]), "console")
		consoleChild = os.NewFile(uintptr(pair[1]), "console-child")
		defer consoleParent.Close()
		cmd.ExtraFiles = append(cmd.ExtraFiles, consoleChild)
		consoleFD = 5
	}
	err = nsinit.StartInPidNamespace("/proc/"+strconv.Itoa(rec.Pid)+"/ns/pid", cmd.Start)
	if consoleChild != nil {
		// Ours closed, the helper's end is the only one: a helper that
		// fails before sending the terminal then reads as EOF, not a hang.
		consoleChild.Close()
	}
	if err != nil {
		return -1, fmt.Errorf("start exec: %w", err)
	}
	configR.Close()
	syncW.Close()
	fail := func(err error) (int, error) {
		cmd.Process.Kill()
		cmd.Wait()
		return -1, err
	}
	mgr, err := r.manager(rec)
	if err != nil {
		return fail(err)
	}
	if err := mgr.Apply(cmd.Process.Pid); err != nil {
		return fail(fmt.Errorf("join container cgroup: %w", err))
	}
	if proc.Capabilities == nil {
		// A process without capabilities gets the container's.
		proc.Capabilities = rec.Capabilities
	}
	// The container's seccomp filter, as compiled at create, applies to
	// the process too.
	cfg := nsinit.EncodeExecConfig(&nsinit.ExecConfig{Process: proc, ContainerPid: rec.Pid, ConsoleFD: consoleFD, Seccomp: rec.Seccomp})
	if _, err := configW.Write(cfg); err != nil {
		return fail(err)
	}
	configW.Close()
	if consoleParent != nil {
		master, err := nsinit.RecvConsole(consoleParent)
		if err != nil {
			return fail(err)
		}
		if opts.Console != nil {
			opts.Console(master)
		}
	}
	msg, err := readMessage(syncR)
	if err != nil && !errors.Is(err, io.EOF) {
		return fail(fmt.Errorf("exec: %w", err))
	}
	if msg.Type == "error" {
		return fail(fmt.Errorf("exec: %s", msg.Msg))
	}
	if opts.PidFile != "" {
		if err := writeFileAtomic(opts.PidFile, []byte(strconv.Itoa(cmd.Process.Pid))); err != nil {
			return fail(err)
		}
	}
	if opts.Detach {
		cmd.Process.Release()
		return 0, nil
	}
	// A caller that gives up (a probe's timeout) ends the process.
	stop := context.AfterFunc(ctx, func() { cmd.Process.Kill() })
	defer stop()
	err = cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(unix.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return ee.ExitCode(), nil
	}
	if err != nil {
		return -1, err
	}
	return 0, nil
}

// Processes lists the pids in the container's cgroup, as `ps` shows them.
func (r *Runtime) Processes(id string) ([]int, error) {
	rec, err := r.readRecord(id)
	if err != nil {
		return nil, err
	}
	return cgroupPids(rec.CgroupPaths)
}

// Stats reads the container's cgroup statistics.
func (r *Runtime) Stats(id string) (*Stats, error) {
	rec, err := r.readRecord(id)
	if err != nil {
		return nil, err
	}
	mgr, err := r.manager(rec)
	if err != nil {
		return nil, err
	}
	s, err := mgr.GetStats()
	if err != nil {
		return nil, err
	}
	return &Stats{
		CPUUsageNanos: s.CpuStats.CpuUsage.TotalUsage,
		CPUThrottled:  s.CpuStats.ThrottlingData.ThrottledPeriods,
		MemoryUsage:   s.MemoryStats.Usage.Usage,
		MemoryLimit:   s.MemoryStats.Usage.Limit,
		MemoryMax:     s.MemoryStats.Usage.MaxUsage,
		Pids:          s.PidsStats.Current,
		PidsLimit:     s.PidsStats.Limit,
	}, nil
}

// Stats are a container's resource figures.
type Stats struct {
	CPUUsageNanos uint64 `json:"cpuUsageNanos"`
	CPUThrottled  uint64 `json:"cpuThrottledPeriods"`
	MemoryUsage   uint64 `json:"memoryUsageBytes"`
	MemoryLimit   uint64 `json:"memoryLimitBytes"`
	MemoryMax     uint64 `json:"memoryMaxUsageBytes"`
	Pids          uint64 `json:"pids"`
	PidsLimit     uint64 `json:"pidsLimit"`
}

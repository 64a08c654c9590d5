package nsinit

import (
	"fmt"
	"io"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// execNamespaces are joined in this order; the pid namespace was joined by
// the runtime before forking us, and the mount namespace comes last because
// it changes what /proc/<pid>/ns paths resolve to.
var execNamespaces = []struct {
	name string
	flag int
}{
	{"ipc", unix.CLONE_NEWIPC}, {"uts", unix.CLONE_NEWUTS}, {"net", unix.CLONE_NEWNET},
	{"cgroup", unix.CLONE_NEWCGROUP}, {"mnt", unix.CLONE_NEWNS},
}

// RunExecInit is the init of a process exec'd into a running container: it
// joins the container's namespaces, takes the process settings and execs.
func RunExecInit() int {
	runtime.LockOSThread()
	// Not dumpable until execve: processes of the container that can see
	// us (a shared pid namespace) must not reach our host root, cwd or
	// executable through /proc/<pid>. execve makes the program dumpable.
	unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
	sync := os.NewFile(4, "sync")
	config := os.NewFile(3, "config")
	if err := execInit(config, sync); err != nil {
		writeMessage(sync, Message{Type: "error", Msg: err.Error()})
		return 1
	}
	return 0
}

func execInit(config, sync *os.File) error {
	data, err := io.ReadAll(config)
	config.Close()
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	cfg, err := DecodeExecConfig(data)
	if err != nil {
		return err
	}
	if cfg.Process == nil || len(cfg.Process.Args) == 0 {
		return fmt.Errorf("process.args is empty")
	}
	fds := map[string]int{}
	for _, ns := range execNamespaces {
		fd, err := unix.Open(fmt.Sprintf("/proc/%d/ns/%s", cfg.ContainerPid, ns.name), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open container %s namespace: %w", ns.name, err)
		}
		fds[ns.name] = fd
	}
	// setns into a mount namespace needs a thread that shares no
	// filesystem information with the others.
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return fmt.Errorf("unshare fs: %w", err)
	}
	for _, ns := range execNamespaces {
		if err := unix.Setns(fds[ns.name], ns.flag); err != nil {
			return fmt.Errorf("join container %s namespace: %w", ns.name, err)
		}
		unix.Close(fds[ns.name])
	}
	if err := unix.Chdir("/"); err != nil {
		return err
	}
	if cfg.Process.Terminal {
		if cfg.ConsoleFD < 0 {
			return fmt.Errorf("terminal requested without a console")
		}
		if err := setupConsole(cfg.ConsoleFD); err != nil {
			return err
		}
	}
	if err := setupProcessWithSeccomp(cfg.Process, cfg.Seccomp); err != nil {
		return err
	}
	writeMessage(sync, Message{Type: "ready"})
	sync.Close()
	return execProcess(cfg.Process)
}

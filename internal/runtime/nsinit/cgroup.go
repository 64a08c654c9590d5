package nsinit

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// enterCgroup moves the calling thread, the init's only thread that will
// survive its execve, into the container's cgroups (paths: directory by v1
// controller, or "" for the unified hierarchy).
//
// On cgroup v1 the thread writes "0" to each hierarchy's `tasks` file. The
// kernel (since 6.1) migrates the current thread alone without taking the
// global cgroup_threadgroup_rwsem for writing, which a `cgroup.procs`
// write takes and which waits for an RCU grace period first (10–20 ms
// here, most of a container's start). The Go runtime's other threads stay
// behind; execve ends them, leaving this thread, the group leader, as the
// whole process. The unified hierarchy (cgroup v2, or its mount beside the
// v1 controllers on a hybrid host) is entered at birth: the shim clones
// the init into it; on an older kernel the process moves itself there
// through cgroup.procs.
func enterCgroup(paths map[string]string) error {
	if len(paths) == 0 {
		return nil
	}
	done := map[string]bool{}
	for controller, dir := range paths {
		if done[dir] {
			continue // controllers mounted together share a directory
		}
		done[dir] = true
		file := filepath.Join(dir, "tasks")
		if controller == "" {
			// The unified hierarchy (v2, or beside v1 controllers on a
			// hybrid host) has no per-thread file for a domain cgroup.
			if inCgroupV2(dir) {
				continue
			}
			file = filepath.Join(dir, "cgroup.procs")
		}
		if err := writeSelf(file); err != nil {
			return err
		}
	}
	return nil
}

func writeSelf(file string) error {
	fd, err := unix.Open(file, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err == nil {
		_, err = unix.Write(fd, []byte("0"))
		unix.Close(fd)
	}
	if err != nil {
		return fmt.Errorf("join cgroup %s: %w", file, err)
	}
	return nil
}

// inCgroupV2 reports whether this process already is in the unified
// cgroup at host directory dir (as when cloned into it).
func inCgroupV2(dir string) bool {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return false
	}
	defer f.Close()
	root := "/sys/fs/cgroup"
	if !cgroupV2Host() {
		root = "/sys/fs/cgroup/unified" // the hybrid layout
	}
	rel := strings.TrimPrefix(dir, root)
	if rel == "" {
		rel = "/"
	}
	want := "0::" + rel
	s := bufio.NewScanner(f)
	for s.Scan() {
		if s.Text() == want {
			return true
		}
	}
	return false
}

// Package reset removes what a data dir's server and agent created: the
// agent's containers, mounts, cgroups and pod network, then the data dir.
package reset

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/moby/sys/mountinfo"
)

// Config names the data dir to reset.
type Config struct {
	DataDir string
}

// Run refuses to reset a data dir whose server is running, then removes it.
func Run(ctx context.Context, cfg Config, out io.Writer) error {
	if cfg.DataDir == "" || cfg.DataDir == "/" {
		return fmt.Errorf("refusing to reset data dir %q", cfg.DataDir)
	}
	if pid, ok := running(filepath.Join(cfg.DataDir, "server", "skiff.pid")); ok {
		return fmt.Errorf("a skiff server (pid %d) is still using %s; stop it first", pid, cfg.DataDir)
	}
	if pid, ok := running(filepath.Join(cfg.DataDir, "agent", "skiff-agent.pid")); ok {
		return fmt.Errorf("a skiff agent (pid %d) is still using %s; stop it first", pid, cfg.DataDir)
	}
	if _, err := os.Stat(cfg.DataDir); errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(out, "nothing to reset in %s\n", cfg.DataDir)
		return nil
	}
	if err := resetAgent(cfg.DataDir, out); err != nil {
		return fmt.Errorf("reset the node agent: %w", err)
	}
	// Unmount first (image snapshots, pod volumes): removing files
	// through a mount would reach what it shows.
	if err := unmountUnder(cfg.DataDir, out); err != nil {
		return err
	}
	if err := os.RemoveAll(cfg.DataDir); err != nil {
		return fmt.Errorf("remove %s: %w", cfg.DataDir, err)
	}
	fmt.Fprintf(out, "removed %s\n", cfg.DataDir)
	return nil
}

// running reads the pid file a server or agent leaves in its data dir.
func running(pidFile string) (int, bool) {
	data, err := os.ReadFile(pidFile)
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	if err := syscall.Kill(pid, 0); err != nil {
		return 0, false
	}
	return pid, true
}

// unmountUnder detaches every mount at or below dir, deepest first.
func unmountUnder(dir string, out io.Writer) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(abs))
	if err != nil {
		return err
	}
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i].Mountpoint) > len(mounts[j].Mountpoint) })
	for _, m := range mounts {
		if err := syscall.Unmount(m.Mountpoint, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
			return fmt.Errorf("unmount %s: %w", m.Mountpoint, err)
		}
		fmt.Fprintf(out, "unmounted %s\n", m.Mountpoint)
	}
	return nil
}

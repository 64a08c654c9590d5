// Package reset removes what a data dir's server and agents created. Later
// roles extend it to containers, mounts, cgroups and network devices.
package reset

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
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
	if pid, ok := runningServer(cfg.DataDir); ok {
		return fmt.Errorf("a skiff server (pid %d) is still using %s; stop it first", pid, cfg.DataDir)
	}
	if _, err := os.Stat(cfg.DataDir); errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(out, "nothing to reset in %s\n", cfg.DataDir)
		return nil
	}
	if err := os.RemoveAll(cfg.DataDir); err != nil {
		return fmt.Errorf("remove %s: %w", cfg.DataDir, err)
	}
	fmt.Fprintf(out, "removed %s\n", cfg.DataDir)
	return nil
}

// runningServer reads the pid file a server leaves in its data dir.
func runningServer(dataDir string) (int, bool) {
	data, err := os.ReadFile(filepath.Join(dataDir, "server", "skiff.pid"))
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

package agent

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Container log rotation, as the kubelet does it: a log past
// logMaxSize is renamed with a timestamp and its writer asked to reopen;
// logMaxFiles files are kept per container instance, the newest ones.
const (
	logMaxSize     = 10 << 20
	logMaxFiles    = 5
	logCheckPeriod = 10 * time.Second
)

func (a *Agent) rotateLogs(ctx context.Context) {
	t := time.NewTicker(logCheckPeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		list, err := a.cfg.Runtime.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{
			State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING}}})
		if err != nil {
			continue
		}
		for _, c := range list.Containers {
			st, err := a.cfg.Runtime.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: c.Id})
			if err != nil || st.Status.LogPath == "" {
				continue
			}
			if err := a.rotateLog(ctx, c.Id, st.Status.LogPath); err != nil {
				a.log.Warn("rotate container log", "container", c.Id, "err", err)
			}
		}
	}
}

func (a *Agent) rotateLog(ctx context.Context, id, path string) error {
	fi, err := os.Stat(path)
	if err != nil || fi.Size() < logMaxSize {
		return nil
	}
	rotated := path + "." + time.Now().UTC().Format("20060102-150405")
	if err := os.Rename(path, rotated); err != nil {
		return err
	}
	if _, err := a.cfg.Runtime.ReopenContainerLog(ctx, &runtimeapi.ReopenContainerLogRequest{ContainerId: id}); err != nil {
		// The writer could not reopen: put the file back so nothing is lost.
		os.Rename(rotated, path)
		return err
	}
	old, _ := filepath.Glob(path + ".*")
	sort.Strings(old) // timestamps sort by time
	for len(old) > logMaxFiles-1 {
		if !strings.HasSuffix(old[0], ".tmp") {
			os.Remove(old[0])
		}
		old = old[1:]
	}
	return nil
}

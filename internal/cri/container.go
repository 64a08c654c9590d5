package cri

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-sh/skiff/internal/runtime"
)

// CreateContainer prepares a container in a sandbox: its root filesystem
// from the image, its OCI spec (joining the sandbox's namespaces) and its
// process, which waits for StartContainer.
func (s *Service) CreateContainer(ctx context.Context, req *runtimeapi.CreateContainerRequest) (resp *runtimeapi.CreateContainerResponse, err error) {
	cfg := req.GetConfig()
	if cfg.GetMetadata() == nil {
		return nil, fmt.Errorf("container config without metadata")
	}
	sb, err := s.getSandbox(req.PodSandboxId)
	if err != nil {
		return nil, err
	}
	_, pausePid := s.sandboxState(sb)
	if pausePid == 0 {
		return nil, fmt.Errorf("sandbox %s is not ready", sb.ID)
	}
	img, imgCfg, err := s.findImage(cfg.GetImage().GetImage())
	if err != nil {
		return nil, err
	}
	id := newID()
	dir := s.containerDir(id)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	c := &container{ID: id, SandboxID: sb.ID, Config: cfg, Image: cfg.GetImage().GetImage(),
		ImageRef: imageID(img), CreatedAt: time.Now().UnixNano(), StopSignal: imgCfg.StopSignal}
	if dir := sb.Config.LogDirectory; dir != "" && cfg.LogPath != "" {
		c.LogPath = filepath.Join(dir, cfg.LogPath)
		if err := os.MkdirAll(filepath.Dir(c.LogPath), 0o755); err != nil {
			return nil, err
		}
	}
	if c.LogPath == "" && (cfg.Tty || cfg.Stdin) {
		// The shim that would hold them is the one that writes the log.
		return nil, fmt.Errorf("container %s: tty and stdin need a log path (the sandbox's log directory and the container's log path)", cfg.Metadata.Name)
	}
	snapshot := false
	defer func() {
		if err != nil {
			s.cfg.Runtime.Delete(id, true)
			if snapshot {
				s.cfg.Images.Remove(id)
			}
			os.RemoveAll(dir)
		}
	}()
	rootfs, err := s.cfg.Images.Prepare(id, img)
	if err != nil {
		return nil, fmt.Errorf("root filesystem: %w", err)
	}
	snapshot = true
	spec, err := containerSpec(c, sb, pausePid, rootfs, imgCfg, s.sandboxDir(sb.ID))
	if err != nil {
		return nil, err
	}
	bundle := filepath.Join(dir, "bundle")
	if err := writeBundle(bundle, spec); err != nil {
		return nil, err
	}
	if err := s.cfg.Runtime.Create(ctx, id, bundle, runtime.CreateOptions{LogPath: c.LogPath,
		OpenStdin: cfg.Stdin, StdinOnce: cfg.StdinOnce}); err != nil {
		return nil, err
	}
	if err := s.saveContainer(c); err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.containers[id] = c
	s.mu.Unlock()
	return &runtimeapi.CreateContainerResponse{ContainerId: id}, nil
}

// StartContainer runs a created container's program.
func (s *Service) StartContainer(ctx context.Context, req *runtimeapi.StartContainerRequest) (*runtimeapi.StartContainerResponse, error) {
	c, err := s.getContainer(req.ContainerId)
	if err != nil {
		return nil, err
	}
	if err := s.cfg.Runtime.Start(c.ID); err != nil {
		return nil, err
	}
	go s.watch(c.ID, c.SandboxID)
	s.mu.Lock()
	c.StartedAt = time.Now().UnixNano()
	err = s.saveContainer(c)
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return &runtimeapi.StartContainerResponse{}, nil
}

// StopContainer sends the stop signal, waits up to the timeout, then kills.
func (s *Service) StopContainer(ctx context.Context, req *runtimeapi.StopContainerRequest) (*runtimeapi.StopContainerResponse, error) {
	c, err := s.getContainer(req.ContainerId)
	if err != nil {
		return nil, err
	}
	if err := s.stopContainer(c, time.Duration(req.Timeout)*time.Second); err != nil {
		return nil, err
	}
	return &runtimeapi.StopContainerResponse{}, nil
}

func (s *Service) stopContainer(c *container, timeout time.Duration) error {
	sig := stopSignal(c.StopSignal)
	st, err := s.cfg.Runtime.State(c.ID)
	if err != nil {
		if errors.Is(err, runtime.ErrNotExist) {
			return nil
		}
		return err
	}
	if st.Status == runtime.StatusCreated {
		// Never started: it has nothing to shut down gracefully.
		timeout = 0
	}
	return s.killAndWait(c.ID, timeout, sig)
}

// killAndWait stops a runtime container: sig first when a grace period is
// given, SIGKILL to all its processes when it runs out.
func (s *Service) killAndWait(id string, grace time.Duration, sig ...unix.Signal) error {
	st, err := s.cfg.Runtime.State(id)
	if err != nil {
		if errors.Is(err, runtime.ErrNotExist) {
			return nil
		}
		return err
	}
	if st.Status == runtime.StatusStopped {
		return nil
	}
	if grace > 0 {
		first := unix.SIGTERM
		if len(sig) > 0 {
			first = sig[0]
		}
		s.cfg.Runtime.Kill(id, first, false)
		ctx, cancel := context.WithTimeout(context.Background(), grace)
		s.cfg.Runtime.Wait(ctx, id)
		cancel()
	}
	if st, err := s.cfg.Runtime.State(id); err == nil && st.Status != runtime.StatusStopped {
		s.cfg.Runtime.Kill(id, unix.SIGKILL, true)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := s.cfg.Runtime.Wait(ctx, id); err != nil {
			return fmt.Errorf("container %s did not stop: %w", id, err)
		}
	}
	return nil
}

// RemoveContainer removes a container, stopping it first if need be.
func (s *Service) RemoveContainer(ctx context.Context, req *runtimeapi.RemoveContainerRequest) (*runtimeapi.RemoveContainerResponse, error) {
	c, err := s.getContainer(req.ContainerId)
	if err != nil {
		if IsNotFound(err) {
			return &runtimeapi.RemoveContainerResponse{}, nil
		}
		return nil, err
	}
	if err := s.removeContainer(c); err != nil {
		return nil, err
	}
	return &runtimeapi.RemoveContainerResponse{}, nil
}

func (s *Service) removeContainer(c *container) error {
	if err := s.killAndWait(c.ID, 0); err != nil {
		return err
	}
	if err := s.cfg.Runtime.Delete(c.ID, true); err != nil && !errors.Is(err, runtime.ErrNotExist) {
		return err
	}
	if err := s.cfg.Images.Remove(c.ID); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("remove root filesystem: %w", err)
	}
	if err := os.RemoveAll(s.containerDir(c.ID)); err != nil {
		return err
	}
	s.mu.Lock()
	delete(s.containers, c.ID)
	s.mu.Unlock()
	return nil
}

func (s *Service) getContainer(id string) (*container, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.containers[id]; ok {
		return c, nil
	}
	var found *container
	for full, c := range s.containers {
		if id != "" && strings.HasPrefix(full, id) {
			if found != nil {
				return nil, fmt.Errorf("container id prefix %q is ambiguous", id)
			}
			found = c
		}
	}
	if found == nil {
		return nil, notFound("container", id)
	}
	return found, nil
}

func (s *Service) containersOf(sandboxID string) []*container {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*container
	for _, c := range s.containers {
		if c.SandboxID == sandboxID {
			out = append(out, c)
		}
	}
	return out
}

// containerState maps the runtime's view to CRI's.
func (s *Service) containerState(c *container) (runtimeapi.ContainerState, *runtime.State) {
	st, err := s.cfg.Runtime.State(c.ID)
	if err != nil {
		return runtimeapi.ContainerState_CONTAINER_UNKNOWN, nil
	}
	switch st.Status {
	case runtime.StatusCreated:
		return runtimeapi.ContainerState_CONTAINER_CREATED, st
	case runtime.StatusRunning:
		return runtimeapi.ContainerState_CONTAINER_RUNNING, st
	case runtime.StatusStopped:
		return runtimeapi.ContainerState_CONTAINER_EXITED, st
	}
	return runtimeapi.ContainerState_CONTAINER_UNKNOWN, st
}

// ListContainers lists the containers that match the filter.
func (s *Service) ListContainers(ctx context.Context, req *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error) {
	s.mu.Lock()
	all := make([]*container, 0, len(s.containers))
	for _, c := range s.containers {
		all = append(all, c)
	}
	s.mu.Unlock()
	f := req.GetFilter()
	var out []*runtimeapi.Container
	for _, c := range all {
		if f != nil && f.Id != "" && !strings.HasPrefix(c.ID, f.Id) {
			continue
		}
		if f != nil && f.PodSandboxId != "" && !strings.HasPrefix(c.SandboxID, f.PodSandboxId) {
			continue
		}
		state, _ := s.containerState(c)
		if f != nil && f.State != nil && f.State.State != state {
			continue
		}
		if f != nil && !labelsMatch(c.Config.Labels, f.LabelSelector) {
			continue
		}
		out = append(out, &runtimeapi.Container{
			Id: c.ID, PodSandboxId: c.SandboxID, Metadata: c.Config.Metadata,
			Image: c.Config.Image, ImageRef: c.ImageRef, ImageId: c.ImageRef, State: state, CreatedAt: c.CreatedAt,
			Labels: c.Config.Labels, Annotations: c.Config.Annotations,
		})
	}
	return &runtimeapi.ListContainersResponse{Containers: out}, nil
}

// ContainerStatus reports a container's state and, once it has exited,
// how: exit code, reason (Completed, Error, OOMKilled) and the message
// from its termination message file.
func (s *Service) ContainerStatus(ctx context.Context, req *runtimeapi.ContainerStatusRequest) (*runtimeapi.ContainerStatusResponse, error) {
	c, err := s.getContainer(req.ContainerId)
	if err != nil {
		return nil, err
	}
	state, st := s.containerState(c)
	status := &runtimeapi.ContainerStatus{
		Id: c.ID, Metadata: c.Config.Metadata, State: state, CreatedAt: c.CreatedAt,
		Image: c.Config.Image, ImageRef: c.ImageRef, ImageId: c.ImageRef,
		Labels: c.Config.Labels, Annotations: c.Config.Annotations, Mounts: c.Config.Mounts, LogPath: c.LogPath,
	}
	if state != runtimeapi.ContainerState_CONTAINER_CREATED {
		status.StartedAt = c.StartedAt
	}
	if st != nil && st.Exit != nil {
		if t, err := time.Parse(time.RFC3339Nano, st.Exit.At); err == nil {
			status.FinishedAt = t.UnixNano()
		}
		status.ExitCode = int32(st.Exit.Code)
		switch {
		case st.Exit.OOMKilled:
			status.Reason = "OOMKilled"
		case st.Exit.Code == 0:
			status.Reason = "Completed"
		default:
			status.Reason = "Error"
		}
	}
	resp := &runtimeapi.ContainerStatusResponse{Status: status}
	if req.Verbose && st != nil {
		resp.Info = map[string]string{"pid": strconv.Itoa(st.Pid), "sandboxID": c.SandboxID}
	}
	return resp, nil
}

// ExecSync runs a command in a container and returns its output, as exec
// probes use it.
func (s *Service) ExecSync(ctx context.Context, req *runtimeapi.ExecSyncRequest) (*runtimeapi.ExecSyncResponse, error) {
	c, err := s.getContainer(req.ContainerId)
	if err != nil {
		return nil, err
	}
	if req.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(req.Timeout)*time.Second)
		defer cancel()
	}
	spec, err := loadBundleProcess(filepath.Join(s.containerDir(c.ID), "bundle"))
	if err != nil {
		return nil, err
	}
	proc := *spec
	proc.Args = req.Cmd
	proc.Terminal = false
	var stdout, stderr bytes.Buffer
	code, err := s.cfg.Runtime.Exec(ctx, c.ID, &proc, runtime.ExecOptions{Stdout: &stdout, Stderr: &stderr})
	if err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("command %q timed out after %ds", req.Cmd, req.Timeout)
	}
	return &runtimeapi.ExecSyncResponse{Stdout: stdout.Bytes(), Stderr: stderr.Bytes(), ExitCode: int32(code)}, nil
}

// ContainerStats reports a container's CPU and memory use from its cgroup.
func (s *Service) ContainerStats(ctx context.Context, req *runtimeapi.ContainerStatsRequest) (*runtimeapi.ContainerStatsResponse, error) {
	c, err := s.getContainer(req.ContainerId)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ContainerStatsResponse{Stats: s.stats(c)}, nil
}

// ListContainerStats reports every container's figures.
func (s *Service) ListContainerStats(ctx context.Context, req *runtimeapi.ListContainerStatsRequest) (*runtimeapi.ListContainerStatsResponse, error) {
	s.mu.Lock()
	all := make([]*container, 0, len(s.containers))
	for _, c := range s.containers {
		all = append(all, c)
	}
	s.mu.Unlock()
	var out []*runtimeapi.ContainerStats
	for _, c := range all {
		f := req.GetFilter()
		if f != nil && f.Id != "" && !strings.HasPrefix(c.ID, f.Id) {
			continue
		}
		if f != nil && f.PodSandboxId != "" && !strings.HasPrefix(c.SandboxID, f.PodSandboxId) {
			continue
		}
		out = append(out, s.stats(c))
	}
	return &runtimeapi.ListContainerStatsResponse{Stats: out}, nil
}

func (s *Service) stats(c *container) *runtimeapi.ContainerStats {
	now := time.Now().UnixNano()
	out := &runtimeapi.ContainerStats{Attributes: &runtimeapi.ContainerAttributes{
		Id: c.ID, Metadata: c.Config.Metadata, Labels: c.Config.Labels, Annotations: c.Config.Annotations}}
	st, err := s.cfg.Runtime.Stats(c.ID)
	if err != nil {
		return out
	}
	out.Cpu = &runtimeapi.CpuUsage{Timestamp: now, UsageCoreNanoSeconds: &runtimeapi.UInt64Value{Value: st.CPUUsageNanos}}
	out.Memory = &runtimeapi.MemoryUsage{Timestamp: now, WorkingSetBytes: &runtimeapi.UInt64Value{Value: st.MemoryUsage},
		UsageBytes: &runtimeapi.UInt64Value{Value: st.MemoryUsage}}
	return out
}

// UpdateContainerResources is accepted; limits are set at create.
func (s *Service) UpdateContainerResources(ctx context.Context, req *runtimeapi.UpdateContainerResourcesRequest) (*runtimeapi.UpdateContainerResourcesResponse, error) {
	if _, err := s.getContainer(req.ContainerId); err != nil {
		return nil, err
	}
	return &runtimeapi.UpdateContainerResourcesResponse{}, nil
}

// ReopenContainerLog asks the container's shim to reopen its log file
// (after the kubelet has rotated it).
func (s *Service) ReopenContainerLog(ctx context.Context, req *runtimeapi.ReopenContainerLogRequest) (*runtimeapi.ReopenContainerLogResponse, error) {
	c, err := s.getContainer(req.ContainerId)
	if err != nil {
		return nil, err
	}
	if err := s.cfg.Runtime.SignalShim(c.ID, unix.SIGUSR1); err != nil {
		return nil, err
	}
	return &runtimeapi.ReopenContainerLogResponse{}, nil
}

// stopSignal parses an image's StopSignal ("SIGQUIT", "QUIT" or "3");
// SIGTERM when unset or unknown.
func stopSignal(name string) unix.Signal {
	name = strings.ToUpper(strings.TrimSpace(name))
	if n, err := strconv.Atoi(name); err == nil && n > 0 && n < 65 {
		return unix.Signal(n)
	}
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if n := unix.SignalNum(name); n != 0 {
		return n
	}
	return unix.SIGTERM
}

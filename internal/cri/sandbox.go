package cri

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-sh/skiff/internal/runtime"
)

// pauseRootfs is the infra process's root: the pause executable and the
// mount points it needs, shared read-only by every sandbox.
func (s *Service) pauseRootfs() string { return filepath.Join(s.cfg.Root, "pause", "rootfs") }

func (s *Service) preparePauseRootfs() error {
	root := s.pauseRootfs()
	for _, d := range []string{"proc", "dev", "sys"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return err
		}
	}
	data, err := os.ReadFile(s.cfg.PauseBinary)
	if err != nil {
		return fmt.Errorf("pause binary: %w", err)
	}
	// A new file renamed over the old one: running sandboxes keep theirs.
	tmp := filepath.Join(root, ".pause.tmp")
	if err := os.WriteFile(tmp, data, 0o755); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(root, "pause"))
}

func namespaceOptions(cfg *runtimeapi.PodSandboxConfig) *runtimeapi.NamespaceOption {
	if sc := cfg.GetLinux().GetSecurityContext(); sc != nil && sc.NamespaceOptions != nil {
		return sc.NamespaceOptions
	}
	return &runtimeapi.NamespaceOption{}
}

// RunPodSandbox starts a pod's infra process in new IPC and UTS namespaces
// and a network namespace of its own (or the node's, for hostNetwork).
func (s *Service) RunPodSandbox(ctx context.Context, req *runtimeapi.RunPodSandboxRequest) (resp *runtimeapi.RunPodSandboxResponse, err error) {
	cfg := req.GetConfig()
	if cfg.GetMetadata() == nil {
		return nil, fmt.Errorf("sandbox config without metadata")
	}
	id := newID()
	dir := s.sandboxDir(id)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	sb := &sandbox{ID: id, Config: cfg, CreatedAt: time.Now().UnixNano(), Handler: req.RuntimeHandler}
	nsOpts := namespaceOptions(cfg)
	defer func() {
		if err != nil {
			s.cfg.Runtime.Delete(id, true)
			if sb.Netns != "" {
				s.cfg.Network.Teardown(id)
			}
			os.RemoveAll(dir)
		}
	}()
	if nsOpts.Network != runtimeapi.NamespaceMode_NODE {
		pod, err := s.cfg.Network.Setup(id)
		if err != nil {
			return nil, fmt.Errorf("pod network: %w", err)
		}
		sb.Netns, sb.IP = pod.Netns, pod.IP.String()
	}
	if err := writeSandboxFiles(dir, cfg); err != nil {
		return nil, err
	}
	if r := cfg.GetLinux().GetResources(); r != nil {
		// The pod's own cgroup bounds all its containers together.
		parent := filepath.Dir(cgroupPath(cfg.GetLinux().GetCgroupParent(), id))
		if err := runtime.SetCgroupLimits(parent, resources(r)); err != nil {
			return nil, fmt.Errorf("pod cgroup: %w", err)
		}
	}
	spec := pauseSpec(sb, s.pauseRootfs())
	bundle := filepath.Join(dir, "bundle")
	if err := writeBundle(bundle, spec); err != nil {
		return nil, err
	}
	if err := s.cfg.Runtime.Create(ctx, id, bundle, runtime.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("create infra process: %w", err)
	}
	if err := s.cfg.Runtime.Start(id); err != nil {
		return nil, fmt.Errorf("start infra process: %w", err)
	}
	if err := s.saveSandbox(sb); err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.sandboxes[id] = sb
	s.mu.Unlock()
	go s.watch(id, id)
	return &runtimeapi.RunPodSandboxResponse{PodSandboxId: id}, nil
}

// writeSandboxFiles writes the /etc/hostname and /etc/resolv.conf that the
// pod's containers mount.
func writeSandboxFiles(dir string, cfg *runtimeapi.PodSandboxConfig) error {
	hostname := cfg.Hostname
	if namespaceOptions(cfg).Network == runtimeapi.NamespaceMode_NODE || hostname == "" {
		hostname, _ = os.Hostname()
	}
	if err := os.WriteFile(filepath.Join(dir, "hostname"), []byte(hostname+"\n"), 0o644); err != nil {
		return err
	}
	var resolv []byte
	if dns := cfg.DnsConfig; dns != nil && (len(dns.Servers) > 0 || len(dns.Searches) > 0 || len(dns.Options) > 0) {
		var b strings.Builder
		if len(dns.Searches) > 0 {
			fmt.Fprintf(&b, "search %s\n", strings.Join(dns.Searches, " "))
		}
		for _, s := range dns.Servers {
			fmt.Fprintf(&b, "nameserver %s\n", s)
		}
		if len(dns.Options) > 0 {
			fmt.Fprintf(&b, "options %s\n", strings.Join(dns.Options, " "))
		}
		resolv = []byte(b.String())
	} else {
		resolv, _ = os.ReadFile("/etc/resolv.conf")
	}
	return os.WriteFile(filepath.Join(dir, "resolv.conf"), resolv, 0o644)
}

func pauseSpec(sb *sandbox, rootfs string) *specs.Spec {
	cfg := sb.Config
	nsOpts := namespaceOptions(cfg)
	namespaces := []specs.LinuxNamespace{{Type: specs.MountNamespace}, {Type: specs.PIDNamespace}}
	if nsOpts.Ipc != runtimeapi.NamespaceMode_NODE {
		namespaces = append(namespaces, specs.LinuxNamespace{Type: specs.IPCNamespace})
	}
	hostname := ""
	if nsOpts.Network != runtimeapi.NamespaceMode_NODE {
		namespaces = append(namespaces,
			specs.LinuxNamespace{Type: specs.UTSNamespace},
			specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: sb.Netns})
		hostname = cfg.Hostname
	}
	spec := &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: rootfs, Readonly: true},
		Process: &specs.Process{
			Args:            []string{"/pause", "pause"},
			Cwd:             "/",
			NoNewPrivileges: true,
			Env:             []string{"PATH=/"},
		},
		Hostname: hostname,
		// The runtime reopens its start FIFO through /proc, as runc does.
		Mounts:      []specs.Mount{{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}}},
		Annotations: map[string]string{"io.kubernetes.cri.container-type": "sandbox", "io.kubernetes.cri.sandbox-id": sb.ID},
		Linux: &specs.Linux{
			Namespaces:  namespaces,
			CgroupsPath: cgroupPath(cfg.GetLinux().GetCgroupParent(), sb.ID),
			Sysctl:      cfg.GetLinux().GetSysctls(),
			Resources:   &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}},
		},
	}
	return spec
}

// cgroupPath puts a sandbox's or container's cgroup under the pod's.
func cgroupPath(parent, id string) string {
	if parent == "" {
		parent = "/skiff/pods"
	}
	return filepath.Join("/", parent, id)
}

// StopPodSandbox stops every container of the sandbox at once, then its
// infra process, and releases its network.
func (s *Service) StopPodSandbox(ctx context.Context, req *runtimeapi.StopPodSandboxRequest) (*runtimeapi.StopPodSandboxResponse, error) {
	sb, err := s.getSandbox(req.PodSandboxId)
	if err != nil {
		if IsNotFound(err) {
			return &runtimeapi.StopPodSandboxResponse{}, nil // already gone: stopped
		}
		return nil, err
	}
	for _, c := range s.containersOf(sb.ID) {
		if err := s.stopContainer(c, 0); err != nil {
			return nil, err
		}
	}
	if err := s.killAndWait(sb.ID, 0); err != nil {
		return nil, err
	}
	if sb.Netns != "" {
		if err := s.cfg.Network.Teardown(sb.ID); err != nil {
			return nil, fmt.Errorf("pod network: %w", err)
		}
	}
	s.mu.Lock()
	sb.Stopped = true
	err = s.saveSandbox(sb)
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return &runtimeapi.StopPodSandboxResponse{}, nil
}

// RemovePodSandbox removes a sandbox and everything of it, stopping what
// still runs.
func (s *Service) RemovePodSandbox(ctx context.Context, req *runtimeapi.RemovePodSandboxRequest) (*runtimeapi.RemovePodSandboxResponse, error) {
	sb, err := s.getSandbox(req.PodSandboxId)
	if err != nil {
		if IsNotFound(err) {
			return &runtimeapi.RemovePodSandboxResponse{}, nil
		}
		return nil, err
	}
	for _, c := range s.containersOf(sb.ID) {
		if err := s.removeContainer(c); err != nil {
			return nil, err
		}
	}
	if err := s.cfg.Runtime.Delete(sb.ID, true); err != nil && !errors.Is(err, runtime.ErrNotExist) {
		return nil, err
	}
	if sb.Netns != "" && !sb.Stopped {
		if err := s.cfg.Network.Teardown(sb.ID); err != nil {
			return nil, fmt.Errorf("pod network: %w", err)
		}
	}
	if err := os.RemoveAll(s.sandboxDir(sb.ID)); err != nil {
		return nil, err
	}
	// The pod's cgroup goes with its last sandbox.
	runtime.RemoveEmptyCgroup(filepath.Dir(cgroupPath(sb.Config.GetLinux().GetCgroupParent(), sb.ID)))
	s.mu.Lock()
	delete(s.sandboxes, sb.ID)
	s.mu.Unlock()
	return &runtimeapi.RemovePodSandboxResponse{}, nil
}

func (s *Service) getSandbox(id string) (*sandbox, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sb, ok := s.sandboxes[id]; ok {
		return sb, nil
	}
	// crictl and the kubelet may give a unique prefix.
	var found *sandbox
	for full, sb := range s.sandboxes {
		if id != "" && strings.HasPrefix(full, id) {
			if found != nil {
				return nil, fmt.Errorf("sandbox id prefix %q is ambiguous", id)
			}
			found = sb
		}
	}
	if found == nil {
		return nil, notFound("sandbox", id)
	}
	return found, nil
}

func (s *Service) sandboxState(sb *sandbox) (runtimeapi.PodSandboxState, int) {
	if sb.Stopped {
		return runtimeapi.PodSandboxState_SANDBOX_NOTREADY, 0
	}
	st, err := s.cfg.Runtime.State(sb.ID)
	if err != nil || st.Status != runtime.StatusRunning {
		return runtimeapi.PodSandboxState_SANDBOX_NOTREADY, 0
	}
	return runtimeapi.PodSandboxState_SANDBOX_READY, st.Pid
}

// PodSandboxStatus reports a sandbox's state and address.
func (s *Service) PodSandboxStatus(ctx context.Context, req *runtimeapi.PodSandboxStatusRequest) (*runtimeapi.PodSandboxStatusResponse, error) {
	sb, err := s.getSandbox(req.PodSandboxId)
	if err != nil {
		return nil, err
	}
	state, pid := s.sandboxState(sb)
	status := &runtimeapi.PodSandboxStatus{
		Id:             sb.ID,
		Metadata:       sb.Config.Metadata,
		State:          state,
		CreatedAt:      sb.CreatedAt,
		Labels:         sb.Config.Labels,
		Annotations:    sb.Config.Annotations,
		RuntimeHandler: sb.Handler,
		Linux:          &runtimeapi.LinuxPodSandboxStatus{Namespaces: &runtimeapi.Namespace{Options: namespaceOptions(sb.Config)}},
	}
	if sb.IP != "" && !sb.Stopped {
		status.Network = &runtimeapi.PodSandboxNetworkStatus{Ip: sb.IP}
	}
	resp := &runtimeapi.PodSandboxStatusResponse{Status: status}
	if req.Verbose {
		resp.Info = map[string]string{"pid": fmt.Sprint(pid), "netns": sb.Netns}
	}
	return resp, nil
}

// ListPodSandbox lists the sandboxes that match the filter.
func (s *Service) ListPodSandbox(ctx context.Context, req *runtimeapi.ListPodSandboxRequest) (*runtimeapi.ListPodSandboxResponse, error) {
	s.mu.Lock()
	all := make([]*sandbox, 0, len(s.sandboxes))
	for _, sb := range s.sandboxes {
		all = append(all, sb)
	}
	s.mu.Unlock()
	f := req.GetFilter()
	var out []*runtimeapi.PodSandbox
	for _, sb := range all {
		if f != nil && f.Id != "" && !strings.HasPrefix(sb.ID, f.Id) {
			continue
		}
		state, _ := s.sandboxState(sb)
		if f != nil && f.State != nil && f.State.State != state {
			continue
		}
		if f != nil && !labelsMatch(sb.Config.Labels, f.LabelSelector) {
			continue
		}
		out = append(out, &runtimeapi.PodSandbox{
			Id: sb.ID, Metadata: sb.Config.Metadata, State: state, CreatedAt: sb.CreatedAt,
			Labels: sb.Config.Labels, Annotations: sb.Config.Annotations, RuntimeHandler: sb.Handler,
		})
	}
	return &runtimeapi.ListPodSandboxResponse{Items: out}, nil
}

func labelsMatch(labels, selector map[string]string) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// Package agent is skiff's kubelet: it registers its Node, keeps the
// node's Lease fresh, and turns the Pods bound to the node into sandboxes
// and containers through CRI, reporting their lifecycle back in the pods'
// status.
package agent

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-sh/skiff/internal/agent/kubeletapi"
)

// Runtime is the part of the CRI RuntimeService the agent drives.
type Runtime interface {
	Version(context.Context, *runtimeapi.VersionRequest) (*runtimeapi.VersionResponse, error)
	RunPodSandbox(context.Context, *runtimeapi.RunPodSandboxRequest) (*runtimeapi.RunPodSandboxResponse, error)
	StopPodSandbox(context.Context, *runtimeapi.StopPodSandboxRequest) (*runtimeapi.StopPodSandboxResponse, error)
	RemovePodSandbox(context.Context, *runtimeapi.RemovePodSandboxRequest) (*runtimeapi.RemovePodSandboxResponse, error)
	PodSandboxStatus(context.Context, *runtimeapi.PodSandboxStatusRequest) (*runtimeapi.PodSandboxStatusResponse, error)
	ListPodSandbox(context.Context, *runtimeapi.ListPodSandboxRequest) (*runtimeapi.ListPodSandboxResponse, error)
	CreateContainer(context.Context, *runtimeapi.CreateContainerRequest) (*runtimeapi.CreateContainerResponse, error)
	StartContainer(context.Context, *runtimeapi.StartContainerRequest) (*runtimeapi.StartContainerResponse, error)
	StopContainer(context.Context, *runtimeapi.StopContainerRequest) (*runtimeapi.StopContainerResponse, error)
	RemoveContainer(context.Context, *runtimeapi.RemoveContainerRequest) (*runtimeapi.RemoveContainerResponse, error)
	ListContainers(context.Context, *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error)
	ContainerStatus(context.Context, *runtimeapi.ContainerStatusRequest) (*runtimeapi.ContainerStatusResponse, error)
	ExecSync(context.Context, *runtimeapi.ExecSyncRequest) (*runtimeapi.ExecSyncResponse, error)
	ReopenContainerLog(context.Context, *runtimeapi.ReopenContainerLogRequest) (*runtimeapi.ReopenContainerLogResponse, error)
}

// Images is the part of the CRI ImageService the agent drives.
type Images interface {
	ImageStatus(context.Context, *runtimeapi.ImageStatusRequest) (*runtimeapi.ImageStatusResponse, error)
	PullImage(context.Context, *runtimeapi.PullImageRequest) (*runtimeapi.PullImageResponse, error)
	ListImages(context.Context, *runtimeapi.ListImagesRequest) (*runtimeapi.ListImagesResponse, error)
}

// Volumes makes and removes pods' volumes on the node.
type Volumes interface {
	Setup(ctx context.Context, pod *corev1.Pod) (map[string]string, error)
	Teardown(uid types.UID) error
}

// Config is what an agent needs.
type Config struct {
	Client   kubernetes.Interface
	NodeName string
	NodeIP   net.IP
	// DataDir is <data-dir>/agent: pod files and logs go under it.
	DataDir string
	Runtime Runtime
	Images  Images
	Volumes Volumes
	// Exits names pods (by UID) whose containers just ended.
	Exits <-chan string
	// PodCIDR is called once the node has been given its pod range, before
	// any pod is started.
	PodCIDR func(cidr string) error
	// Labels are added to the Node (e.g. the control-plane role).
	Labels map[string]string
	// LocalPathDir is where this node keeps local-path volumes; the Node
	// publishes it for the provisioner.
	LocalPathDir string
	// Streams runs exec, attach and port-forward sessions.
	Streams kubeletapi.Streams
	// KubeletListener and KubeletTLS serve the kubelet API (logs, exec,
	// attach, port-forward) that the API server proxies to; the port is
	// published in the Node's status.
	KubeletListener net.Listener
	KubeletTLS      *tls.Config
	Log             *slog.Logger
}

// Agent runs one node.
type Agent struct {
	cfg      Config
	log      *slog.Logger
	recorder record.EventRecorder

	mu      sync.Mutex
	workers map[types.UID]*worker
	backoff map[string]*backoff // by pod UID/container name
	probes  probes
}

// New makes an agent; Run starts it.
func New(cfg Config) *Agent {
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Agent{cfg: cfg, log: log, workers: map[types.UID]*worker{}, backoff: map[string]*backoff{}}
}

// backoff is Kubernetes' restart delay for one container: 10 s doubling up
// to 5 min, forgotten after 10 min of running.
type backoff struct {
	delay time.Duration
	until time.Time
}

const (
	backoffInitial = 10 * time.Second
	backoffMax     = 5 * time.Minute
	backoffReset   = 10 * time.Minute
)

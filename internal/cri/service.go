// Package cri is skiff's container runtime as the kubelet sees it: the CRI
// RuntimeService and ImageService (k8s.io/cri-api) on top of skiff's OCI
// runtime, image store and pod network. The agent calls it in process; the
// same service is served on a unix socket for crictl.
package cri

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-streaming/pkg/streaming"

	"github.com/skiff-sh/skiff/internal/image"
	"github.com/skiff-sh/skiff/internal/network"
	"github.com/skiff-sh/skiff/internal/runtime"
	"github.com/skiff-sh/skiff/internal/version"
)

// RuntimeName is what Version and the node's containerRuntimeVersion say.
const RuntimeName = "skiff"

// Network is the pod network, as the service uses it.
type Network interface {
	Setup(id string) (*network.Pod, error)
	Teardown(id string) error
	Status(id string) (*network.Pod, error)
}

// Config is where the service keeps things and what it builds on.
type Config struct {
	// Root holds sandbox and container records and bundles
	// (<data-dir>/agent/cri).
	Root string
	// Runtime runs the containers.
	Runtime *runtime.Runtime
	// Images pulls images and makes container root filesystems.
	Images *image.Store
	// Network gives sandboxes their network namespace and address.
	Network Network
	// PauseBinary is the executable the infra process runs (skiff-init).
	PauseBinary string
}

// Service implements runtimeapi.RuntimeServiceServer and ImageServiceServer.
type Service struct {
	runtimeapi.UnimplementedRuntimeServiceServer
	runtimeapi.UnimplementedImageServiceServer
	cfg Config

	mu         sync.Mutex
	sandboxes  map[string]*sandbox
	containers map[string]*container
	exits      chan string
	streams    streaming.Server
}

// New loads the records a previous run left, so that a restarted agent
// finds its running pods as they were.
func New(cfg Config) (*Service, error) {
	s := &Service{cfg: cfg, sandboxes: map[string]*sandbox{}, containers: map[string]*container{},
		exits: make(chan string, 1024)}
	for _, d := range []string{s.sandboxDir(""), s.containerDir("")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	if err := s.load(); err != nil {
		return nil, err
	}
	if err := s.preparePauseRootfs(); err != nil {
		return nil, err
	}
	if err := s.startStreaming(); err != nil {
		return nil, fmt.Errorf("streaming server: %w", err)
	}
	for id := range s.sandboxes {
		go s.watch(id, id)
	}
	for id, c := range s.containers {
		go s.watch(id, c.SandboxID)
	}
	return s, nil
}

// Exits delivers the pod UID of a sandbox whose infra process or one of
// whose containers has just ended, so that the agent syncs that pod at
// once instead of polling. A full channel drops events: the agent's
// periodic resync catches up.
func (s *Service) Exits() <-chan string { return s.exits }

// watch waits, without polling, for a runtime container to end.
func (s *Service) watch(id, sandboxID string) {
	if _, err := s.cfg.Runtime.Wait(context.Background(), id); err != nil && !errors.Is(err, runtime.ErrNotExist) {
		return
	}
	s.mu.Lock()
	sb := s.sandboxes[sandboxID]
	s.mu.Unlock()
	if sb == nil {
		return
	}
	select {
	case s.exits <- sb.Config.GetMetadata().GetUid():
	default:
	}
}

func (s *Service) sandboxDir(id string) string {
	return filepath.Join(s.cfg.Root, "sandboxes", id)
}

func (s *Service) containerDir(id string) string {
	return filepath.Join(s.cfg.Root, "containers", id)
}

// newID returns a container or sandbox id as containerd makes them.
func newID() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Version reports the CRI and runtime versions.
func (s *Service) Version(ctx context.Context, req *runtimeapi.VersionRequest) (*runtimeapi.VersionResponse, error) {
	return &runtimeapi.VersionResponse{
		Version:           "0.1.0",
		RuntimeName:       RuntimeName,
		RuntimeVersion:    version.Version,
		RuntimeApiVersion: "v1",
	}, nil
}

// Status reports the runtime and network as ready.
func (s *Service) Status(ctx context.Context, req *runtimeapi.StatusRequest) (*runtimeapi.StatusResponse, error) {
	return &runtimeapi.StatusResponse{Status: &runtimeapi.RuntimeStatus{Conditions: []*runtimeapi.RuntimeCondition{
		{Type: runtimeapi.RuntimeReady, Status: true},
		{Type: runtimeapi.NetworkReady, Status: true},
	}}}, nil
}

// UpdateRuntimeConfig accepts the pod CIDR; the network was given it at start.
func (s *Service) UpdateRuntimeConfig(ctx context.Context, req *runtimeapi.UpdateRuntimeConfigRequest) (*runtimeapi.UpdateRuntimeConfigResponse, error) {
	return &runtimeapi.UpdateRuntimeConfigResponse{}, nil
}

// errNotFound is what lookups of unknown ids wrap; the gRPC server maps it
// to codes.NotFound.
var errNotFound = errors.New("not found")

func notFound(kind, id string) error {
	return fmt.Errorf("%s %q: %w", kind, id, errNotFound)
}

// IsNotFound reports whether err says an id is unknown.
func IsNotFound(err error) bool { return errors.Is(err, errNotFound) }

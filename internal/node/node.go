// Package node runs one machine's node agent: the CRI service on skiff's
// runtime, image store and pod network (served for crictl on
// <data-dir>/agent/run/cri.sock), the kubelet API, and the agent itself.
// `skiff server` runs it in process; `skiff agent` runs it for another
// machine.
package node

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"

	"k8s.io/client-go/kubernetes"

	"github.com/skiff-sh/skiff/internal/agent"
	"github.com/skiff-sh/skiff/internal/agent/nodestate"
	"github.com/skiff-sh/skiff/internal/agent/volume"
	"github.com/skiff-sh/skiff/internal/cri"
	"github.com/skiff-sh/skiff/internal/events"
	"github.com/skiff-sh/skiff/internal/image"
	"github.com/skiff-sh/skiff/internal/localpath"
	"github.com/skiff-sh/skiff/internal/network"
	"github.com/skiff-sh/skiff/internal/runtime"
	"github.com/skiff-sh/skiff/internal/runtime/binary"
)

// Config is one node's configuration.
type Config struct {
	DataDir     string
	RunDir      string // default /run/skiff
	Bridge      string // default skiff0
	KubeletPort int
	NodeName    string
	NodeIP      netip.Addr
	ClusterCIDR netip.Prefix
	ServiceCIDR netip.Prefix
	Labels      map[string]string
}

// Credentials are the node's TLS material.
type Credentials struct {
	// ServerCA verifies the API server; the pod volumes' kube-root-ca.crt
	// falls back to it.
	ServerCA []byte
	// ClientCA verifies the API server's kubelet-client certificate.
	ClientCA *x509.CertPool
	// Serving is the kubelet API's certificate.
	Serving tls.Certificate
}

// Run runs the node until ctx ends.
func Run(ctx context.Context, cfg Config, client kubernetes.Interface, creds Credentials, log *slog.Logger) error {
	if cfg.RunDir == "" {
		cfg.RunDir = "/run/skiff"
	}
	if cfg.Bridge == "" {
		cfg.Bridge = "skiff0"
	}
	kubeletTLS := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{creds.Serving},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: creds.ClientCA}
	// On every address, as the kubelet: the API server reaches it at the
	// node's InternalIP.
	kubeletLn, err := net.Listen("tcp", net.JoinHostPort("", strconv.Itoa(cfg.KubeletPort)))
	if err != nil {
		return fmt.Errorf("kubelet API: %w", err)
	}
	defer kubeletLn.Close()
	agentDir := filepath.Join(cfg.DataDir, "agent")
	images, err := image.New(filepath.Join(agentDir, "images"), image.Options{})
	if err != nil {
		return fmt.Errorf("image store: %w", err)
	}
	imgs, err := images.ImportDir(ctx, filepath.Join(agentDir, "images", "import"))
	for _, img := range imgs {
		log.Info("imported image", "ref", img.Ref, "digest", img.Digest.String())
	}
	if err != nil {
		log.Error("import air-gap images", "err", err)
	}
	rtBinary, err := binary.Path()
	if err != nil {
		return err
	}
	initBinary := filepath.Join(filepath.Dir(rtBinary), "skiff-init")
	rt := &runtime.Runtime{Root: filepath.Join(cfg.RunDir, "runtime"), Binary: initBinary}
	netCfg := network.Config{
		StateDir:    filepath.Join(agentDir, "network"),
		NetnsDir:    filepath.Join(cfg.RunDir, "netns"),
		Bridge:      cfg.Bridge,
		Forward:     true, // pods reach beyond the node, masqueraded
		ClusterCIDR: ipNet(cfg.ClusterCIDR.String()),
		ServiceCIDR: ipNet(cfg.ServiceCIDR.String()),
	}
	state := nodestate.State{RunDir: cfg.RunDir, Bridge: cfg.Bridge,
		ClusterCIDR: cfg.ClusterCIDR.String(), ServiceCIDR: cfg.ServiceCIDR.String()}
	if err := nodestate.Write(cfg.DataDir, state); err != nil {
		return err
	}
	podNet := &lazyNetwork{}
	svc, err := cri.New(cri.Config{Root: filepath.Join(agentDir, "cri"), Runtime: rt, Images: images, Network: podNet, PauseBinary: initBinary})
	if err != nil {
		return fmt.Errorf("container runtime: %w", err)
	}
	go func() {
		if err := cri.Serve(ctx, filepath.Join(agentDir, "run", "cri.sock"), svc); err != nil {
			log.Error("cri socket", "err", err)
		}
	}()
	// Volume paths are hostPaths, which must be absolute.
	localPathDir, err := filepath.Abs(filepath.Join(cfg.DataDir, "storage"))
	if err != nil {
		return err
	}
	reclaimEvents := events.NewHostRecorder(ctx, client, "local-path-provisioner", cfg.NodeName)
	defer reclaimEvents.Shutdown()
	go (&localpath.Reclaimer{Client: client, NodeName: cfg.NodeName, Dir: localPathDir,
		Recorder: reclaimEvents, Log: log.With("component", "localpath")}).Run(ctx)
	a := agent.New(agent.Config{
		Client:   client,
		NodeName: cfg.NodeName,
		NodeIP:   net.IP(cfg.NodeIP.AsSlice()),
		DataDir:  agentDir,
		Runtime:  svc,
		Images:   svc,
		Volumes:  &volume.Manager{Root: filepath.Join(agentDir, "pods"), Source: agent.APISource{Client: client}, Claims: agent.APISource{Client: client}, CACert: creds.ServerCA},
		Exits:    svc.Exits(),
		PodCIDR: func(cidr string) error {
			netCfg.PodCIDR = ipNet(cidr)
			state.PodCIDR = cidr
			if err := nodestate.Write(cfg.DataDir, state); err != nil {
				return err
			}
			n, err := network.New(netCfg)
			if err != nil {
				return err
			}
			podNet.set(n)
			return nil
		},
		Labels:          cfg.Labels,
		LocalPathDir:    localPathDir,
		Streams:         svc.Streams(),
		KubeletListener: kubeletLn,
		KubeletTLS:      kubeletTLS,
		Log:             log,
	})
	return a.Run(ctx)
}

func ipNet(cidr string) *net.IPNet {
	_, n, err := net.ParseCIDR(cidr)
	if err != nil {
		return nil
	}
	return n
}

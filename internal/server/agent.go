package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"

	"k8s.io/client-go/kubernetes"

	"github.com/skiff-sh/skiff/internal/agent"
	"github.com/skiff-sh/skiff/internal/agent/nodestate"
	"github.com/skiff-sh/skiff/internal/agent/volume"
	"github.com/skiff-sh/skiff/internal/cri"
	"github.com/skiff-sh/skiff/internal/image"
	"github.com/skiff-sh/skiff/internal/network"
	"github.com/skiff-sh/skiff/internal/runtime"
	"github.com/skiff-sh/skiff/internal/runtime/binary"
)

// runAgent runs this machine's node agent: the CRI service on the runtime,
// the image store and the pod network, served for crictl on
// <data-dir>/agent/run/cri.sock, and the agent itself on client.
func runAgent(ctx context.Context, cfg Config, client kubernetes.Interface, creds *credentials, log *slog.Logger) error {
	caCert := creds.serverCA.CertPEM
	serving, err := tls.LoadX509KeyPair(creds.kubeletServing.CertFile, creds.kubeletServing.KeyFile)
	if err != nil {
		return err
	}
	kubeletTLS := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{serving},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: creds.clientCA.Pool()}
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
	rt := &runtime.Runtime{Root: filepath.Join(cfg.runDir(), "runtime"), Binary: initBinary}
	netCfg := network.Config{
		StateDir:    filepath.Join(agentDir, "network"),
		NetnsDir:    filepath.Join(cfg.runDir(), "netns"),
		Bridge:      cfg.bridge(),
		ClusterCIDR: ipNet(cfg.ClusterCIDR.String()),
		ServiceCIDR: ipNet(cfg.ServiceCIDR.String()),
	}
	state := nodestate.State{RunDir: cfg.runDir(), Bridge: cfg.bridge(),
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
	a := agent.New(agent.Config{
		Client:   client,
		NodeName: cfg.NodeName,
		NodeIP:   net.IP(cfg.NodeIP.AsSlice()),
		DataDir:  agentDir,
		Runtime:  svc,
		Images:   svc,
		Volumes:  &volume.Manager{Root: filepath.Join(agentDir, "pods"), Source: agent.APISource{Client: client}, CACert: caCert},
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
		Labels:          map[string]string{"node-role.kubernetes.io/control-plane": "true"},
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

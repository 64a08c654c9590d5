package server

import (
	"context"
	"crypto/tls"
	"log/slog"

	"k8s.io/client-go/kubernetes"

	"github.com/skiff-sh/skiff/internal/node"
)

// runNode runs the agent of the server's own machine, in process.
func runNode(ctx context.Context, cfg Config, client kubernetes.Interface, creds *credentials, log *slog.Logger) error {
	serving, err := tls.LoadX509KeyPair(creds.kubeletServing.CertFile, creds.kubeletServing.KeyFile)
	if err != nil {
		return err
	}
	return node.Run(ctx, node.Config{
		DataDir: cfg.DataDir, RunDir: cfg.RunDir, Bridge: cfg.Bridge, KubeletPort: cfg.KubeletPort,
		NodeName: cfg.NodeName, NodeIP: cfg.NodeIP, ClusterCIDR: cfg.ClusterCIDR, ServiceCIDR: cfg.ServiceCIDR,
		Labels: map[string]string{"node-role.kubernetes.io/control-plane": "true"},
	}, client, node.Credentials{ServerCA: creds.serverCA.CertPEM, ClientCA: creds.clientCA.Pool(), Serving: serving}, log)
}

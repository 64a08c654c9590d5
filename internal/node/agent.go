package node

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/skiff-sh/skiff/internal/pki"
	"github.com/skiff-sh/skiff/internal/version"
)

// AgentConfig is the `skiff agent` role: a node of a cluster whose server
// runs elsewhere.
type AgentConfig struct {
	Config
	// Server is the API server's URL; Token is its join token (the full
	// form from <data-dir>/server/node-token pins its CA).
	Server, Token string
}

// RunAgent joins the cluster (or reuses the credential an earlier join
// left) and runs the node, talking to the API only over HTTPS.
func RunAgent(ctx context.Context, cfg AgentConfig, log *slog.Logger) error {
	if cfg.Server == "" || cfg.Token == "" {
		return errors.New("an agent needs --server and --token")
	}
	dir := filepath.Join(cfg.DataDir, "agent", "tls")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	pid := filepath.Join(cfg.DataDir, "agent", "skiff-agent.pid")
	if err := pki.WriteFileAtomic(pid, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return err
	}
	defer os.Remove(pid)
	hostname, _ := os.Hostname()
	req := JoinRequest{NodeName: cfg.NodeName, Hostnames: []string{hostname}}
	if cfg.NodeIP.IsValid() {
		req.Addresses = []string{cfg.NodeIP.String()}
	}
	joined, err := Join(ctx, cfg.Server, cfg.Token, req, log)
	if err != nil {
		return fmt.Errorf("join %s: %w", cfg.Server, err)
	}
	for name, data := range map[string]string{"server-ca.crt": joined.ServerCA, "client-ca.crt": joined.ClientCA,
		"client.crt": joined.ClientCert, "client.key": joined.ClientKey, "serving.crt": joined.ServingCert, "serving.key": joined.ServingKey} {
		if err := pki.WriteFileAtomic(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			return err
		}
	}
	if cfg.ClusterCIDR, err = netip.ParsePrefix(joined.ClusterCIDR); err != nil {
		return fmt.Errorf("the server's cluster CIDR: %w", err)
	}
	if cfg.ServiceCIDR, err = netip.ParsePrefix(joined.ServiceCIDR); err != nil {
		return fmt.Errorf("the server's service CIDR: %w", err)
	}
	client, err := kubernetes.NewForConfig(&rest.Config{
		Host:            cfg.Server,
		TLSClientConfig: rest.TLSClientConfig{CAData: []byte(joined.ServerCA), CertData: []byte(joined.ClientCert), KeyData: []byte(joined.ClientKey)},
		QPS:             100, Burst: 200,
		UserAgent: "skiff-agent/" + version.Version,
	})
	if err != nil {
		return err
	}
	serving, err := tls.X509KeyPair([]byte(joined.ServingCert), []byte(joined.ServingKey))
	if err != nil {
		return err
	}
	clientCA := x509.NewCertPool()
	clientCA.AppendCertsFromPEM([]byte(joined.ClientCA))
	log.Info("joined the cluster", "server", cfg.Server, "node", cfg.NodeName)
	return Run(ctx, cfg.Config, client, Credentials{ServerCA: []byte(joined.ServerCA), ClientCA: clientCA, Serving: serving}, log)
}

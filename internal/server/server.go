// Package server is the `skiff server` role: it prepares credentials and the
// datastore, then runs the API server and the control loops that belong to
// it, each under one errgroup that stops them all when one fails.
package server

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"

	"github.com/skiff-sh/skiff/internal/admission"
	"github.com/skiff-sh/skiff/internal/apiserver"
	"github.com/skiff-sh/skiff/internal/controller/garbagecollector"
	nscontroller "github.com/skiff-sh/skiff/internal/controller/namespace"
	"github.com/skiff-sh/skiff/internal/controller/nodeipam"
	"github.com/skiff-sh/skiff/internal/controller/serviceaccount"
	"github.com/skiff-sh/skiff/internal/etcd"
	"github.com/skiff-sh/skiff/internal/events"
	"github.com/skiff-sh/skiff/internal/metrics"
	"github.com/skiff-sh/skiff/internal/node"
	"github.com/skiff-sh/skiff/internal/openapi"
	"github.com/skiff-sh/skiff/internal/pki"
	"github.com/skiff-sh/skiff/internal/registry"
	"github.com/skiff-sh/skiff/internal/scheduler"
	"github.com/skiff-sh/skiff/internal/store"
	"github.com/skiff-sh/skiff/internal/version"
)

// Paths inside the data dir.
func tlsDir(dataDir string) string    { return filepath.Join(dataDir, "server", "tls") }
func dbDir(dataDir string) string     { return filepath.Join(dataDir, "server", "db") }
func tokenFile(dataDir string) string { return filepath.Join(dataDir, "server", "token") }

// KubeconfigPath is where the admin kubeconfig of a data dir is written.
func KubeconfigPath(dataDir string) string { return filepath.Join(dataDir, "kubeconfig.yaml") }

// credentials are the server's TLS identities.
type credentials struct {
	serverCA   *pki.CA
	clientCA   *pki.CA
	serving    pki.Pair
	admin      pki.Pair
	controller pki.Pair
	// kubeletClient is the API server's identity towards node agents;
	// kubeletServing is this machine's agent's serving certificate.
	kubeletClient  pki.Pair
	kubeletServing pki.Pair
	// serviceAccountKey signs service account tokens.
	serviceAccountKey crypto.Signer
}

func ensureCredentials(cfg Config) (*credentials, error) {
	dir := tlsDir(cfg.DataDir)
	serverCA, err := pki.LoadOrCreateCA(dir, "server-ca", "skiff-server-ca")
	if err != nil {
		return nil, err
	}
	clientCA, err := pki.LoadOrCreateCA(dir, "client-ca", "skiff-client-ca")
	if err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	sans := pki.ServingSANs{
		DNSNames: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
		IPs:      []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")},
	}
	if host != "" {
		sans.DNSNames = append(sans.DNSNames, host)
	}
	if cfg.NodeIP.IsValid() {
		sans.IPs = append(sans.IPs, net.IP(cfg.NodeIP.AsSlice()))
	}
	sans.IPs = append(sans.IPs, net.IP(firstServiceIP(cfg.ServiceCIDR).AsSlice()))
	if ip := net.ParseIP(cfg.BindAddress); ip != nil && !ip.IsUnspecified() {
		sans.IPs = append(sans.IPs, ip)
	}
	c := &credentials{serverCA: serverCA, clientCA: clientCA}
	if c.serving, err = serverCA.EnsureServing(dir, "serving-kube-apiserver", sans); err != nil {
		return nil, err
	}
	if c.admin, err = clientCA.EnsureClient(dir, "client-admin", "system:admin", []string{"system:masters"}); err != nil {
		return nil, err
	}
	if c.controller, err = clientCA.EnsureClient(dir, "client-controller", "system:skiff-controller", []string{"system:masters"}); err != nil {
		return nil, err
	}
	if c.kubeletClient, err = clientCA.EnsureClient(dir, "client-kube-apiserver-kubelet", "kube-apiserver-kubelet-client", []string{"system:masters"}); err != nil {
		return nil, err
	}
	kubeletSANs := pki.ServingSANs{DNSNames: []string{"localhost"}, IPs: []net.IP{net.ParseIP("127.0.0.1")}}
	if cfg.NodeName != "" {
		kubeletSANs.DNSNames = append(kubeletSANs.DNSNames, cfg.NodeName)
	}
	if host != "" {
		kubeletSANs.DNSNames = append(kubeletSANs.DNSNames, host)
	}
	if cfg.NodeIP.IsValid() {
		kubeletSANs.IPs = append(kubeletSANs.IPs, net.IP(cfg.NodeIP.AsSlice()))
	}
	if c.kubeletServing, err = serverCA.EnsureServing(dir, "serving-kubelet", kubeletSANs); err != nil {
		return nil, err
	}
	if c.serviceAccountKey, err = apiserver.LoadOrCreateServiceAccountKey(filepath.Join(dir, "service-account.key")); err != nil {
		return nil, fmt.Errorf("service account key: %w", err)
	}
	return c, nil
}

// firstServiceIP is the kubernetes service's address: the range's first host.
func firstServiceIP(cidr netip.Prefix) netip.Addr {
	return cidr.Masked().Addr().Next()
}

// ensureToken returns the agent join token, generating and keeping one when
// none is given.
func ensureToken(cfg Config) (string, error) {
	path := tokenFile(cfg.DataDir)
	if cfg.Token != "" {
		return cfg.Token, pki.WriteFileAtomic(path, []byte(cfg.Token+"\n"), 0o600)
	}
	if data, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(data)), nil
	}
	b := make([]byte, 24)
	rand.Read(b)
	tok := hex.EncodeToString(b)
	return tok, pki.WriteFileAtomic(path, []byte(tok+"\n"), 0o600)
}

// Run runs the server until ctx ends.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	start := time.Now()
	if err := os.MkdirAll(filepath.Join(cfg.DataDir, "server"), 0o700); err != nil {
		return err
	}
	creds, err := ensureCredentials(cfg)
	if err != nil {
		return fmt.Errorf("credentials: %w", err)
	}
	pidFile := filepath.Join(cfg.DataDir, "server", "skiff.pid")
	if err := pki.WriteFileAtomic(pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return err
	}
	defer os.Remove(pidFile)
	token, err := ensureToken(cfg)
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}

	ln, err := net.Listen("tcp", net.JoinHostPort(cfg.BindAddress, strconv.Itoa(cfg.HTTPSPort)))
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	defer ln.Close()
	cfg.HTTPSPort = ln.Addr().(*net.TCPAddr).Port // the one picked, for port 0
	loopbackHost := "127.0.0.1"
	if ip := net.ParseIP(cfg.BindAddress); ip != nil && !ip.IsUnspecified() {
		loopbackHost = cfg.BindAddress
	}
	serverURL := "https://" + net.JoinHostPort(loopbackHost, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
	if err := writeKubeconfigs(cfg, serverURL, creds); err != nil {
		return err
	}

	ds, err := etcd.Open(ctx, etcd.Config{
		DataDir: dbDir(cfg.DataDir), Endpoints: cfg.DatastoreEndpoints,
		CAFile: cfg.DatastoreCAFile, CertFile: cfg.DatastoreCertFile, KeyFile: cfg.DatastoreKeyFile,
	}, log)
	if err != nil {
		return err
	}
	defer ds.Close()

	m := metrics.New()
	st := store.New(ds.Client, store.NewJSONCodec(registry.Scheme), log.With("component", "store"), m)
	resources := registry.All()
	for _, r := range resources {
		if err := st.StartWatching(ctx, r.Key()); err != nil {
			return fmt.Errorf("watch %s: %w", r.Resource, err)
		}
	}

	tlsCfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
		ClientAuth: tls.VerifyClientCertIfGiven,
		ClientCAs:  creds.clientCA.Pool(),
		NextProtos: []string{"h2", "http/1.1"},
	}
	cert, err := tls.LoadX509KeyPair(creds.serving.CertFile, creds.serving.KeyFile)
	if err != nil {
		return err
	}
	tlsCfg.Certificates = []tls.Certificate{cert}

	kubeletClient, err := tls.LoadX509KeyPair(creds.kubeletClient.CertFile, creds.kubeletClient.KeyFile)
	if err != nil {
		return err
	}
	caHandler, joinHandler := joinHandlers(cfg, creds)
	if err := pki.WriteFileAtomic(filepath.Join(cfg.DataDir, "server", "node-token"), []byte(node.FullToken(creds.serverCA.CertPEM, token)+"\n"), 0o600); err != nil {
		return err
	}
	admit := admission.New(st, cfg.ServiceCIDR)
	api := apiserver.New(apiserver.Config{
		Public:     map[string]http.Handler{node.CACertsPath: caHandler},
		Private:    map[string]http.Handler{node.JoinPath: joinHandler},
		KubeletTLS: &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{kubeletClient}, RootCAs: creds.serverCA.Pool()},
		TLS:        tlsCfg,
		Tokens:     map[string]apiserver.User{token: {Name: "skiff:node-bootstrap", Groups: []string{"system:bootstrappers"}}},
		Version:    version.Info(),
		Admission:  admit,
		OpenAPI:    openapi.New(resources),
		Metrics:    m.Handler(),
		Observer:   m,
		Log:        log.With("component", "apiserver"),

		// Signs and verifies service account tokens (serviceaccounts/token).
		ServiceAccountKey: creds.serviceAccountKey,
	}, st, resources)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return api.Run(gctx, ln) })
	g.Go(func() error { return st.RunCompaction(gctx, cfg.CompactionInterval) })

	loopback := &rest.Config{
		Host: serverURL,
		TLSClientConfig: rest.TLSClientConfig{
			CAData:   creds.serverCA.CertPEM,
			CertFile: creds.controller.CertFile,
			KeyFile:  creds.controller.KeyFile,
		},
		// In process, over loopback: the scheduler binds thousands of pods a
		// second, so client-side throttling stays out of the way.
		QPS: 5000, Burst: 10000,
		UserAgent: "skiff-server/" + version.Version,
	}
	client, err := kubernetes.NewForConfig(loopback)
	if err != nil {
		return err
	}
	presetEvents := events.NewRecorder(gctx, client, "podpreset-admission")
	context.AfterFunc(gctx, presetEvents.Shutdown)
	admit.SetRecorder(presetEvents)
	md, err := metadata.NewForConfig(loopback)
	if err != nil {
		return err
	}
	g.Go(func() error {
		if err := bootstrap(gctx, client, cfg); err != nil {
			return fmt.Errorf("bootstrap: %w", err)
		}
		api.SetReady()
		log.Info("skiff server ready", "url", serverURL, "startup", time.Since(start).Round(time.Millisecond), "kubeconfig", KubeconfigPath(cfg.DataDir))
		factory := informers.NewSharedInformerFactory(client, 0)
		var namespaced []schema.GroupVersionResource
		for _, r := range resources {
			if r.Namespaced {
				namespaced = append(namespaced, r.GroupVersionResource)
			}
		}
		nsc := nscontroller.New(client, md, factory, namespaced, log.With("controller", "namespace"))
		sac := serviceaccount.New(client, factory, creds.serverCA.CertPEM, log.With("controller", "serviceaccount"))
		factory.Start(gctx.Done())
		var gcResources []garbagecollector.Resource
		for _, r := range resources {
			gcResources = append(gcResources, garbagecollector.Resource{GVR: r.GroupVersionResource, Kind: r.Kind, Namespaced: r.Namespaced})
		}
		gc := garbagecollector.New(md, gcResources, log.With("controller", "garbagecollector"))
		cg, cctx := errgroup.WithContext(gctx)
		cg.Go(func() error { return nsc.Run(cctx) })
		cg.Go(func() error { return sac.Run(cctx) })
		cg.Go(func() error { return gc.Run(cctx) })
		ipam := nodeipam.New(client, factory, cfg.ClusterCIDR, log.With("controller", "nodeipam"))
		schedEvents := events.NewRecorder(cctx, client, scheduler.Name)
		defer schedEvents.Shutdown()
		sched := scheduler.New(client, factory, schedEvents, log.With("component", "scheduler"))
		var workloads []runner
		if !cfg.DisableControllerManager {
			workloads = workloadControllers(cctx, client, factory, log)
			workloads = append(workloads, storageControllers(cctx, client, factory, cfg, log)...)
		}
		factory.Start(cctx.Done())
		if len(workloads) > 0 {
			cg.Go(func() error {
				return elected(cctx, client, cfg, "kube-controller-manager", log, func(ctx context.Context) {
					var wg errgroup.Group
					for _, w := range workloads {
						wg.Go(func() error { return w.Run(ctx) })
					}
					wg.Wait()
				})
			})
		}
		cg.Go(func() error { return ipam.Run(cctx) })
		if !cfg.DisableScheduler {
			cg.Go(func() error {
				return elected(cctx, client, cfg, "kube-scheduler", log, func(ctx context.Context) { sched.Run(ctx) })
			})
		}
		if !cfg.DisableAgent {
			cg.Go(func() error {
				if err := runNode(cctx, cfg, client, creds, log.With("component", "agent")); err != nil {
					return fmt.Errorf("agent: %w", err)
				}
				return nil
			})
		}
		return cg.Wait()
	})
	err = g.Wait()
	if errors.Is(err, context.Canceled) || ctx.Err() != nil {
		return nil
	}
	return err
}

func writeKubeconfigs(cfg Config, serverURL string, creds *credentials) error {
	data, err := kubeconfig(serverURL, creds.serverCA.CertPEM, creds.admin)
	if err != nil {
		return err
	}
	if err := pki.WriteFileAtomic(KubeconfigPath(cfg.DataDir), data, 0o600); err != nil {
		return err
	}
	if cfg.WriteKubeconfig != "" {
		return pki.WriteFileAtomic(cfg.WriteKubeconfig, data, 0o600)
	}
	return nil
}

// Package etcd provides the datastore the API server keeps its objects in:
// an embedded single-member etcd by default, or a client of an external etcd
// cluster when the user outgrows one machine.
package etcd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3client"
	"go.uber.org/zap"
)

// Config selects and configures the datastore.
type Config struct {
	// DataDir holds the embedded member's data.
	DataDir string
	// Endpoints of an external etcd cluster; empty means embedded.
	Endpoints []string
	CAFile    string
	CertFile  string
	KeyFile   string
}

// Datastore is a connected etcd client and, when embedded, the member that
// serves it.
type Datastore struct {
	Client *clientv3.Client
	member *embed.Etcd
}

// Open starts the embedded member or connects to the external cluster.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*Datastore, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if len(cfg.Endpoints) > 0 {
		return connect(ctx, cfg)
	}
	return startEmbedded(ctx, cfg, log)
}

// Close stops the client and the embedded member.
func (d *Datastore) Close() error {
	err := d.Client.Close()
	if errors.Is(err, context.Canceled) {
		// The in-process client reports its own cancellation on close.
		err = nil
	}
	if d.member != nil {
		d.member.Close()
		<-d.member.Server.StopNotify()
	}
	return err
}

func startEmbedded(ctx context.Context, cfg Config, log *slog.Logger) (*Datastore, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, err
	}
	ec := embed.NewConfig()
	ec.Name = "skiff"
	ec.Dir = cfg.DataDir
	// A single member elects itself; short timings make that take tens of
	// milliseconds instead of a second.
	ec.TickMs = 10
	ec.ElectionMs = 100
	// Clients talk to the member in process; the listeners are unix sockets
	// in the data dir so that several servers on one machine never collide.
	peer := mustURL("unix://" + filepath.Join(cfg.DataDir, "peer.sock"))
	client := mustURL("unix://" + filepath.Join(cfg.DataDir, "client.sock"))
	ec.ListenPeerUrls = []url.URL{peer}
	ec.AdvertisePeerUrls = []url.URL{peer}
	ec.ListenClientUrls = []url.URL{client}
	ec.AdvertiseClientUrls = []url.URL{client}
	ec.InitialCluster = ec.InitialClusterFromName(ec.Name)
	ec.WatchProgressNotifyInterval = 5 * time.Second
	ec.QuotaBackendBytes = 8 << 30
	ec.Logger = "zap"
	ec.LogLevel = "info"
	if os.Getenv("SKIFF_ETCD_DEBUG") == "" {
		// etcd logs its own shutdown as errors; skiff reports what matters.
		ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	}
	// Stale sockets from a killed server would make the listeners fail.
	os.Remove(filepath.Join(cfg.DataDir, "peer.sock"))
	os.Remove(filepath.Join(cfg.DataDir, "client.sock"))
	e, err := embed.StartEtcd(ec)
	if err != nil {
		return nil, fmt.Errorf("start embedded etcd: %w", err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("embedded etcd: %w", err)
	case <-time.After(60 * time.Second):
		e.Close()
		return nil, errors.New("embedded etcd: not ready after 60s")
	case <-ctx.Done():
		e.Close()
		return nil, ctx.Err()
	}
	log.Debug("embedded etcd ready", "dir", cfg.DataDir)
	return &Datastore{Client: v3client.New(e.Server), member: e}, nil
}

func connect(ctx context.Context, cfg Config) (*Datastore, error) {
	var tlsCfg *tls.Config
	if cfg.CAFile != "" || cfg.CertFile != "" {
		info := transport.TLSInfo{TrustedCAFile: cfg.CAFile, CertFile: cfg.CertFile, KeyFile: cfg.KeyFile}
		c, err := info.ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("datastore TLS: %w", err)
		}
		tlsCfg = c
	}
	eps := make([]string, 0, len(cfg.Endpoints))
	for _, ep := range cfg.Endpoints {
		// k3s accepts "https://host:2379"; the client takes the same.
		eps = append(eps, strings.TrimSpace(ep))
	}
	c, err := clientv3.New(clientv3.Config{
		Endpoints:   eps,
		TLS:         tlsCfg,
		DialTimeout: 10 * time.Second,
		Logger:      zap.NewNop(),
		Context:     context.WithoutCancel(ctx),
	})
	if err != nil {
		return nil, fmt.Errorf("connect to etcd %v: %w", eps, err)
	}
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		actx, acancel := context.WithTimeout(pctx, 2*time.Second)
		_, err = c.Get(actx, "compact_rev_key", clientv3.WithCountOnly())
		acancel()
		if err == nil {
			return &Datastore{Client: c}, nil
		}
		// The client only reports a deadline; a TLS rejection (unknown CA,
		// missing or untrusted client certificate) will not heal, so fail
		// now and say why.
		if tlsCfg != nil {
			if terr := probeTLS(eps, tlsCfg); terr != nil {
				c.Close()
				return nil, fmt.Errorf("etcd %v refused the TLS connection: %w", eps, terr)
			}
		}
		select {
		case <-pctx.Done():
			c.Close()
			return nil, fmt.Errorf("etcd %v not reachable: %w", eps, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// probeTLS returns the TLS error an endpoint answers with, or nil when the
// connection works or fails for another reason. Under TLS 1.3 the server
// judges the client certificate after the handshake, so its verdict arrives
// as an alert on the first read.
func probeTLS(endpoints []string, cfg *tls.Config) error {
	for _, ep := range endpoints {
		u, err := url.Parse(ep)
		if err != nil || u.Scheme != "https" {
			continue
		}
		tc := cfg.Clone()
		tc.NextProtos = []string{"h2"}
		if tc.ServerName == "" {
			tc.ServerName = u.Hostname()
		}
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", u.Host, tc)
		if err == nil {
			conn.SetDeadline(time.Now().Add(2 * time.Second))
			if _, err = conn.Write([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")); err == nil {
				_, err = conn.Read(make([]byte, 1))
			}
			conn.Close()
		}
		var verr *tls.CertificateVerificationError
		var opErr *net.OpError
		if errors.As(err, &verr) || errors.As(err, &opErr) && opErr.Op == "remote error" {
			return err
		}
	}
	return nil
}

func mustURL(s string) url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return *u
}

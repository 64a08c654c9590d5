// Command etcdserver runs a single-member etcd for the end-to-end tests, so
// that they can point `skiff server --datastore-endpoint` at an etcd the test
// owns: it can stop, inspect and compact that etcd behind skiff's back.
//
// It serves clients on --listen-client-url (TLS with client certificate
// authentication when --cert, --key and --ca are given), prints "ready" on
// stdout once it serves, and stops on SIGTERM or SIGINT.
package main

import (
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

type config struct {
	dataDir    string
	clientURL  string
	peerURL    string
	cert, key  string
	ca         string
	clientCert string
	clientKey  string
}

func main() {
	var cfg config
	flag.StringVar(&cfg.dataDir, "data-dir", "", "member data directory")
	flag.StringVar(&cfg.clientURL, "listen-client-url", "", "client URL, e.g. https://127.0.0.1:2379")
	flag.StringVar(&cfg.peerURL, "listen-peer-url", "", "peer URL, e.g. http://127.0.0.1:2380")
	flag.StringVar(&cfg.cert, "cert", "", "serving certificate")
	flag.StringVar(&cfg.key, "key", "", "serving key")
	flag.StringVar(&cfg.ca, "ca", "", "CA that client certificates must be signed by (turns on client cert auth)")
	flag.StringVar(&cfg.clientCert, "client-cert", "", "client certificate etcd uses to reach itself (gateway)")
	flag.StringVar(&cfg.clientKey, "client-key", "", "key of --client-cert")
	flag.Parse()
	if err := run(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "etcdserver:", err)
		os.Exit(1)
	}
}

func run(cfg config) error {
	if cfg.dataDir == "" || cfg.clientURL == "" || cfg.peerURL == "" {
		return fmt.Errorf("--data-dir, --listen-client-url and --listen-peer-url are required")
	}
	client, err := url.Parse(cfg.clientURL)
	if err != nil {
		return fmt.Errorf("--listen-client-url: %w", err)
	}
	peer, err := url.Parse(cfg.peerURL)
	if err != nil {
		return fmt.Errorf("--listen-peer-url: %w", err)
	}
	ec := embed.NewConfig()
	ec.Name = "e2e"
	ec.Dir = cfg.dataDir
	ec.TickMs = 10
	ec.ElectionMs = 100
	ec.ListenClientUrls = []url.URL{*client}
	ec.AdvertiseClientUrls = []url.URL{*client}
	ec.ListenPeerUrls = []url.URL{*peer}
	ec.AdvertisePeerUrls = []url.URL{*peer}
	ec.InitialCluster = ec.InitialClusterFromName(ec.Name)
	ec.LogLevel = "error"
	if cfg.cert != "" {
		ec.ClientTLSInfo.CertFile = cfg.cert
		ec.ClientTLSInfo.KeyFile = cfg.key
		ec.ClientTLSInfo.ClientCertFile = cfg.clientCert
		ec.ClientTLSInfo.ClientKeyFile = cfg.clientKey
		if cfg.ca != "" {
			ec.ClientTLSInfo.TrustedCAFile = cfg.ca
			ec.ClientTLSInfo.ClientCertAuth = true
		}
	}
	e, err := embed.StartEtcd(ec)
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	defer e.Close()
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		return err
	case <-time.After(60 * time.Second):
		return fmt.Errorf("not ready after 60s")
	}
	fmt.Println("ready")
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	select {
	case <-sig:
		return nil
	case err := <-e.Err():
		return err
	}
}

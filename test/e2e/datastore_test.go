package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/skiff-sh/skiff/internal/pki"
)

// etcdTLS is the PKI of an external etcd that requires client certificates.
type etcdTLS struct {
	ca                    string
	serverCert, serverKey string
	clientCert, clientKey string
}

func newEtcdTLS(t *testing.T) *etcdTLS {
	t.Helper()
	dir := t.TempDir()
	ca, err := pki.LoadOrCreateCA(dir, "etcd-ca", "e2e-etcd-ca")
	if err != nil {
		t.Fatal(err)
	}
	serving, err := ca.EnsureServing(dir, "etcd-server", pki.ServingSANs{DNSNames: []string{"localhost"}, IPs: []net.IP{net.ParseIP("127.0.0.1")}})
	if err != nil {
		t.Fatal(err)
	}
	client, err := ca.EnsureClient(dir, "etcd-client", "skiff", nil)
	if err != nil {
		t.Fatal(err)
	}
	return &etcdTLS{ca: ca.CertFile, serverCert: serving.CertFile, serverKey: serving.KeyFile, clientCert: client.CertFile, clientKey: client.KeyFile}
}

// skiffArgs are the flags that point skiff at this etcd with the client
// certificate.
func (x *etcdTLS) skiffArgs(endpoint string) []string {
	return []string{"--datastore-endpoint", endpoint, "--datastore-cafile", x.ca, "--datastore-certfile", x.clientCert, "--datastore-keyfile", x.clientKey}
}

// etcdProcess is an external etcd member owned by one test, run from the
// helper program in ./etcdserver.
type etcdProcess struct {
	t        *testing.T
	endpoint string
	tls      *etcdTLS
	cmd      *exec.Cmd
	log      *bytes.Buffer
	exited   chan struct{}
}

// buildEtcdServer compiles the helper etcd program into a temp dir.
func buildEtcdServer(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "etcdserver")
	cmd := exec.Command("go", "build", "-o", bin, "./etcdserver")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build etcdserver: %v\n%s", err, out)
	}
	return bin
}

// startEtcd starts an external etcd; with x it serves TLS and requires
// client certificates signed by x's CA.
func startEtcd(t *testing.T, x *etcdTLS) *etcdProcess {
	t.Helper()
	bin := buildEtcdServer(t)
	scheme := "http"
	if x != nil {
		scheme = "https"
	}
	e := &etcdProcess{t: t, tls: x, endpoint: fmt.Sprintf("%s://127.0.0.1:%d", scheme, freePort(t)), log: &bytes.Buffer{}, exited: make(chan struct{})}
	args := []string{"--data-dir", t.TempDir(), "--listen-client-url", e.endpoint,
		"--listen-peer-url", fmt.Sprintf("http://127.0.0.1:%d", freePort(t))}
	if x != nil {
		args = append(args, "--cert", x.serverCert, "--key", x.serverKey, "--ca", x.ca, "--client-cert", x.clientCert, "--client-key", x.clientKey)
	}
	e.cmd = exec.Command(bin, args...)
	e.cmd.Stdout, e.cmd.Stderr = e.log, e.log
	e.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := e.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { e.cmd.Wait(); close(e.exited) }()
	t.Cleanup(func() {
		e.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-e.exited:
		case <-time.After(10 * time.Second):
			e.cmd.Process.Kill()
			<-e.exited
		}
		if t.Failed() {
			t.Logf("etcd log:\n%s", tail(e.log.String(), 40))
		}
	})
	c := e.client()
	eventually(t, 30*time.Second, func() error {
		select {
		case <-e.exited:
			t.Fatalf("etcd exited early:\n%s", tail(e.log.String(), 40))
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := c.Get(ctx, "health")
		return err
	})
	return e
}

// client returns an etcd client for the test itself, closed at cleanup.
func (e *etcdProcess) client() *clientv3.Client {
	e.t.Helper()
	var tlsCfg *tls.Config
	if e.tls != nil {
		info := transport.TLSInfo{TrustedCAFile: e.tls.ca, CertFile: e.tls.clientCert, KeyFile: e.tls.clientKey}
		var err error
		if tlsCfg, err = info.ClientConfig(); err != nil {
			e.t.Fatal(err)
		}
	}
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{e.endpoint}, TLS: tlsCfg, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	return c
}

func TestServerOnExternalEtcdWithClientCertsKeepsDataInEtcdAcrossRestarts(t *testing.T) {
	x := newEtcdTLS(t)
	e := startEtcd(t, x)
	s := startServer(t, withArgs(x.skiffArgs(e.endpoint)...))

	s.mustKubectl("create", "namespace", "ext")
	s.mustKubectl("create", "configmap", "settings", "-n", "ext", "--from-literal=color=blue")
	manifest := `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: ext
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.27
`
	if r := s.kubectlIn(manifest, nil, "apply", "-f", "-"); r.err != nil || !strings.Contains(r.stdout, "deployment.apps/web created") {
		t.Fatalf("apply: %s", r)
	}
	if r := s.kubectlIn(manifest, nil, "apply", "-f", "-"); r.err != nil || !strings.Contains(r.stdout, "deployment.apps/web unchanged") {
		t.Fatalf("second apply: %s", r)
	}
	if out := s.mustKubectl("get", "configmap", "settings", "-n", "ext", "-o", "jsonpath={.data.color}"); out != "blue" {
		t.Errorf("get configmap: %q", out)
	}

	// The objects are in the external etcd, under /registry/, with the
	// key's revision as their resourceVersion; the embedded etcd never ran.
	c := e.client()
	ctx := context.Background()
	rv := s.mustKubectl("get", "configmap", "settings", "-n", "ext", "-o", "jsonpath={.metadata.resourceVersion}")
	resp, err := c.Get(ctx, "/registry/configmaps/ext/settings")
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 1 {
		t.Fatal("/registry/configmaps/ext/settings is not in the external etcd")
	}
	if !bytes.Contains(resp.Kvs[0].Value, []byte(`"color":"blue"`)) {
		t.Errorf("stored configmap lacks its data: %s", resp.Kvs[0].Value)
	}
	if got := strconv.FormatInt(resp.Kvs[0].ModRevision, 10); got != rv {
		t.Errorf("resourceVersion %s, etcd mod revision %s", rv, got)
	}
	for _, key := range []string{"/registry/namespaces/ext", "/registry/apps/deployments/ext/web"} {
		if resp, err := c.Get(ctx, key, clientv3.WithCountOnly()); err != nil || resp.Count != 1 {
			t.Errorf("%s in etcd: count %v, err %v", key, resp, err)
		}
	}
	if _, err := os.Stat(filepath.Join(s.dataDir, "server", "db", "member")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an embedded etcd member was created (stat err %v)", err)
	}

	s.stop()
	s.restart()
	if out := s.mustKubectl("get", "configmap", "settings", "-n", "ext", "-o", "jsonpath={.data.color}:{.metadata.resourceVersion}"); out != "blue:"+rv {
		t.Errorf("after restart: %q, want %q", out, "blue:"+rv)
	}
	s.mustKubectl("get", "deployment", "web", "-n", "ext")
	s.mustKubectl("create", "configmap", "after-restart", "-n", "ext")
	if resp, err := c.Get(ctx, "/registry/configmaps/ext/after-restart", clientv3.WithCountOnly()); err != nil || resp.Count != 1 {
		t.Errorf("configmap created after the restart is not in etcd: %v, %v", resp, err)
	}
}

func TestServerWithoutDatastoreClientCertFailsToStartWithClearError(t *testing.T) {
	x := newEtcdTLS(t)
	e := startEtcd(t, x)
	// It trusts etcd's CA but has no client certificate to show.
	cmd := exec.Command(skiffBin, "server", "--data-dir", t.TempDir(), "--bind-address", "127.0.0.1",
		"--https-listen-port", strconv.Itoa(freePort(t)), "--disable-agent",
		"--datastore-endpoint", e.endpoint, "--datastore-cafile", x.ca)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var err error
	exited := make(chan struct{})
	go func() { err = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	select {
	case <-exited:
	case <-time.After(20 * time.Second):
		t.Fatalf("server without a client certificate still running after 20s:\n%s", tail(out.String(), 20))
	}
	if err == nil {
		t.Fatalf("server exited cleanly:\n%s", out.String())
	}
	msg := strings.TrimSpace(out.String())
	t.Logf("skiff server said: %s", tail(msg, 1))
	if !strings.Contains(msg, "refused the TLS connection") || !strings.Contains(msg, "certificate required") {
		t.Errorf("the error does not say that etcd wants a client certificate:\n%s", tail(msg, 20))
	}
}

func TestPodInformerRelistsAfterCompactionAndReportsDeletionItMissed(t *testing.T) {
	e := startEtcd(t, nil)
	s := startServer(t, withArgs("--datastore-endpoint", e.endpoint))
	c := s.client()
	ctx := context.Background()
	const ns = "default"
	pods := c.CoreV1().Pods(ns)

	// Count the 410s the informer's watches get, as a status or an event.
	var expired atomic.Int32
	lw := podListWatch(c, ns)
	watchPods := lw.WatchFuncWithContext
	lw.WatchFuncWithContext = func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
		w, err := watchPods(ctx, opts)
		if err != nil {
			if apierrors.IsResourceExpired(err) {
				expired.Add(1)
			}
			return nil, err
		}
		return watch.Filter(w, func(ev watch.Event) (watch.Event, bool) {
			if ev.Type == watch.Error && apierrors.IsResourceExpired(apierrors.FromObject(ev.Object)) {
				expired.Add(1)
			}
			return ev, true
		}), nil
	}
	log := runPodInformer(t, lw)
	// Created after the first sync: the initial list reaches handlers in
	// no particular order, live events in the order they happened.
	for _, name := range []string{"a-kept", "b-removed"} {
		if _, err := pods.Create(ctx, storePod(name), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	labelPod(t, c, ns, "a-kept", "1")
	log.wait(t, "add a-kept", "add b-removed", "update a-kept step=1")

	// Behind the stopped server's back: b-removed goes away, other writes
	// move the revision on, and etcd forgets the history the informer would
	// resume from.
	s.stop()
	ec := e.client()
	if _, err := ec.Delete(ctx, "/registry/pods/default/b-removed"); err != nil {
		t.Fatal(err)
	}
	var rev int64
	for i := range 5 {
		resp, err := ec.Put(ctx, fmt.Sprintf("/e2e/bump/%d", i), "x")
		if err != nil {
			t.Fatal(err)
		}
		rev = resp.Header.Revision
	}
	if _, err := ec.Compact(ctx, rev, clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}

	// The informer's watch from its old resourceVersion gets 410; it lists
	// again and finds b-removed gone.
	s.restart()
	log.wait(t, "add a-kept", "add b-removed", "update a-kept step=1", "delete b-removed (final state unknown)")
	if expired.Load() == 0 {
		t.Error("the informer relisted without being told 410 Expired")
	}
	if _, err := pods.Create(ctx, storePod("c-new"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	labelPod(t, c, ns, "a-kept", "2")
	log.wait(t, "add a-kept", "add b-removed", "update a-kept step=1", "delete b-removed (final state unknown)", "add c-new", "update a-kept step=2")
}

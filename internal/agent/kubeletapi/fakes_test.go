package kubeletapi

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"
)

// fakeContainer is one container the fake Pods knows, with its current
// and previous instance.
type fakeContainer struct {
	id, log         string
	prevID, prevLog string // empty: no previous instance
	waiting         string // a reason: the newest instance is not there yet
}

// fakePods stands for the agent's view of its pods.
type fakePods struct {
	mu         sync.Mutex
	containers map[string]fakeContainer // "ns/pod/container"
	sandboxes  map[string]string        // "ns/pod" → sandbox id
	running    map[string]bool          // container id → running
	checks     atomic.Int64             // Running calls
}

func newFakePods() *fakePods {
	return &fakePods{containers: map[string]fakeContainer{}, sandboxes: map[string]string{}, running: map[string]bool{}}
}

func (p *fakePods) addContainer(ns, pod, name string, c fakeContainer, running bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.containers[ns+"/"+pod+"/"+name] = c
	p.sandboxes[ns+"/"+pod] = "sandbox-" + pod
	p.running[c.id] = running
}

func (p *fakePods) setRunning(id string, running bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.running[id] = running
}

func (p *fakePods) Container(_ context.Context, ns, pod, name string, previous bool) (string, string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := p.containers[ns+"/"+pod+"/"+name]
	if !ok {
		return "", "", fmt.Errorf("container %s/%s/%s: %w", ns, pod, name, ErrNotFound)
	}
	if previous {
		if c.prevID == "" {
			return "", "", fmt.Errorf("previous instance of %s: %w", name, ErrNotFound)
		}
		return c.prevID, c.prevLog, nil
	}
	if c.waiting != "" {
		return "", "", fmt.Errorf("container %q in pod %q is waiting to start: %s", name, pod, c.waiting)
	}
	return c.id, c.log, nil
}

func (p *fakePods) Running(_ context.Context, id string) bool {
	p.checks.Add(1)
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.running[id]
}

func (p *fakePods) Sandbox(_ context.Context, ns, pod string) (string, types.UID, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	id, ok := p.sandboxes[ns+"/"+pod]
	if !ok {
		return "", "", fmt.Errorf("pod %s/%s: %w", ns, pod, ErrNotFound)
	}
	return id, types.UID("uid-" + pod), nil
}

// fakeStreams stands for the CRI runtime. Exec understands a few
// commands: echo ARGS (stdout), warn ARGS (stderr), cat (stdin to stdout),
// size (the first terminal size) and exit N. Attach copies stdin to stdout; PortForward echoes each
// stream back, prefixed with the sandbox and port.
type fakeStreams struct {
	execs atomic.Int64
}

var _ Streams = (*fakeStreams)(nil)

func (f *fakeStreams) Exec(_ context.Context, id string, cmd []string, in io.Reader, out, errw io.WriteCloser, _ bool, resize <-chan remotecommand.TerminalSize) error {
	f.execs.Add(1)
	args := strings.Join(cmd[1:], " ")
	switch cmd[0] {
	case "echo":
		_, err := fmt.Fprintln(out, args)
		return err
	case "warn":
		_, err := fmt.Fprintln(errw, args)
		return err
	case "cat":
		_, err := io.Copy(out, in)
		return err
	case "size":
		size, ok := <-resize
		if !ok {
			return errors.New("no terminal size")
		}
		_, err := fmt.Fprintf(out, "%dx%d\n", size.Width, size.Height)
		return err
	case "exit":
		code, err := strconv.Atoi(args)
		if err != nil {
			return err
		}
		// Wrapped, as a CRI service would return it.
		return fmt.Errorf("exec in %s: %w", id, utilexec.CodeExitError{Err: fmt.Errorf("exit status %d", code), Code: code})
	}
	return fmt.Errorf("%s: executable file not found in $PATH", cmd[0])
}

func (f *fakeStreams) Attach(_ context.Context, _ string, in io.Reader, out, _ io.WriteCloser, _ bool, _ <-chan remotecommand.TerminalSize) error {
	if in == nil || out == nil {
		return errors.New("attach needs stdin and stdout")
	}
	_, err := io.Copy(out, in)
	return err
}

func (f *fakeStreams) PortForward(_ context.Context, sandbox string, port int32, stream io.ReadWriteCloser) error {
	defer stream.Close()
	buf := make([]byte, 4096)
	for {
		n, err := stream.Read(buf)
		if n > 0 {
			if _, werr := fmt.Fprintf(stream, "%s:%d %s", sandbox, port, buf[:n]); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// testPKI is a CA with a server certificate for 127.0.0.1 and a client
// certificate, standing for the cluster's kubelet serving and
// kubelet-client certificates.
type testPKI struct {
	caPEM                 []byte
	server                tls.Certificate
	clientCert, clientKey []byte
	pool                  *x509.CertPool
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "test-ca"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	issue := func(serial int64, cn string, usage x509.ExtKeyUsage) (certPEM, keyPEM []byte) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: cn},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
			IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
			pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	}
	p := &testPKI{caPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	serverCert, serverKey := issue(2, "node", x509.ExtKeyUsageServerAuth)
	if p.server, err = tls.X509KeyPair(serverCert, serverKey); err != nil {
		t.Fatal(err)
	}
	p.clientCert, p.clientKey = issue(3, "kube-apiserver-kubelet-client", x509.ExtKeyUsageClientAuth)
	return p
}

// serverTLS is what the agent passes to Serve: its certificate, and
// client certificates required and checked against the CA.
func (p *testPKI) serverTLS() *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{p.server},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    p.pool,
		MinVersion:   tls.VersionTLS12,
	}
}

// startServer runs Serve with the fakes on a loopback port until the test
// ends or stop is called, and returns a client-go config that reaches it as
// the API server does, with the kubelet-client certificate.
func startServer(t *testing.T, pods *fakePods, streams *fakeStreams) (cfg *rest.Config, stop func()) {
	t.Helper()
	pki := newTestPKI(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, l, pki.serverTLS(), Config{Pods: pods, Streams: streams, StreamCreationTimeout: 5 * time.Second})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return after its context ended")
		}
	})
	return &rest.Config{
		Host: "https://" + l.Addr().String(),
		TLSClientConfig: rest.TLSClientConfig{
			CAData:   pki.caPEM,
			CertData: pki.clientCert,
			KeyData:  pki.clientKey,
		},
	}, cancel
}

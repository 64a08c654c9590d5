package kubeletapi

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	gwebsocket "github.com/gorilla/websocket"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/client-go/transport/spdy"
	"k8s.io/client-go/util/exec"
	"k8s.io/streaming/pkg/httpstream"
)

func newStreamsFixture(t *testing.T) (*rest.Config, *fakeStreams) {
	t.Helper()
	pods := newFakePods()
	pods.addContainer("default", "web", "app", fakeContainer{id: "app-1"}, true)
	streams := &fakeStreams{}
	cfg, _ := startServer(t, pods, streams)
	return cfg, streams
}

// execURL is the URL skiff's API server proxies `kubectl exec` to: kubectl's
// own query parameters, passed through.
func execURL(cfg *rest.Config, sub string, command ...string) *url.URL {
	u, _ := url.Parse(cfg.Host + "/" + sub + "/default/web/app")
	q := url.Values{"command": command, "stdout": {"true"}, "stderr": {"true"}}
	u.RawQuery = q.Encode()
	return u
}

func withStdin(u *url.URL) *url.URL {
	q := u.Query()
	q.Set("stdin", "true")
	u.RawQuery = q.Encode()
	return u
}

// kubectlExecutor is the executor kubectl exec builds: WebSocket first,
// SPDY if the WebSocket upgrade fails (kubectl pkg/cmd/exec createExecutor).
func kubectlExecutor(t *testing.T, cfg *rest.Config, u *url.URL) remotecommand.Executor {
	t.Helper()
	spdyExec, err := remotecommand.NewSPDYExecutor(cfg, http.MethodPost, u)
	if err != nil {
		t.Fatal(err)
	}
	wsExec, err := remotecommand.NewWebSocketExecutor(cfg, http.MethodGet, u.String())
	if err != nil {
		t.Fatal(err)
	}
	e, err := remotecommand.NewFallbackExecutor(wsExec, spdyExec, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// stream runs a session asking for stdout and stderr, and for stdin if
// given. The URL must ask for the same streams, as kubectl's does.
func stream(t *testing.T, e remotecommand.Executor, stdin io.Reader) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	opts := remotecommand.StreamOptions{Stdin: stdin, Stdout: &out, Stderr: &errb}
	err = e.StreamWithContext(ctx, opts)
	return out.String(), errb.String(), err
}

func TestExecOverSPDYCarriesStdoutAndStderr(t *testing.T) {
	cfg, _ := newStreamsFixture(t)
	for _, tc := range []struct {
		cmd            []string
		stdout, stderr string
	}{
		{[]string{"echo", "hello", "world"}, "hello world\n", ""},
		{[]string{"warn", "oops"}, "", "oops\n"},
	} {
		e, err := remotecommand.NewSPDYExecutor(cfg, http.MethodPost, execURL(cfg, "exec", tc.cmd...))
		if err != nil {
			t.Fatal(err)
		}
		stdout, stderr, err := stream(t, e, nil)
		if err != nil || stdout != tc.stdout || stderr != tc.stderr {
			t.Errorf("%v: stdout %q stderr %q err %v", tc.cmd, stdout, stderr, err)
		}
	}
}

func TestExecOverSPDYCarriesStdinToItsEnd(t *testing.T) {
	cfg, _ := newStreamsFixture(t)
	e, err := remotecommand.NewSPDYExecutor(cfg, http.MethodPost, withStdin(execURL(cfg, "exec", "cat")))
	if err != nil {
		t.Fatal(err)
	}
	in := strings.Repeat("piped input\n", 5000)
	stdout, _, err := stream(t, e, strings.NewReader(in))
	if err != nil || stdout != in {
		t.Errorf("got %d bytes, want %d; err %v", len(stdout), len(in), err)
	}
}

func TestExecNonZeroExitReachesKubectlAsItsExitCode(t *testing.T) {
	cfg, _ := newStreamsFixture(t)
	e, err := remotecommand.NewSPDYExecutor(cfg, http.MethodPost, execURL(cfg, "exec", "exit", "3"))
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = stream(t, e, nil)
	var exit exec.CodeExitError
	if !errors.As(err, &exit) || exit.Code != 3 {
		t.Fatalf("got %v (%T), want a CodeExitError with code 3", err, err)
	}
	// kubectl prints the error as is.
	if err.Error() != "command terminated with exit code 3" {
		t.Errorf("message %q", err.Error())
	}
}

func TestExecRuntimeFailureIsAnError(t *testing.T) {
	cfg, _ := newStreamsFixture(t)
	e, err := remotecommand.NewSPDYExecutor(cfg, http.MethodPost, execURL(cfg, "exec", "nosuch"))
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = stream(t, e, nil)
	var exit exec.CodeExitError
	if err == nil || errors.As(err, &exit) || !strings.Contains(err.Error(), "executable file not found") {
		t.Errorf("got %v", err)
	}
}

func TestExecOverWebSocketV5IsRefusedBeforeUpgrading(t *testing.T) {
	cfg, streams := newStreamsFixture(t)
	e, err := remotecommand.NewWebSocketExecutor(cfg, http.MethodGet, execURL(cfg, "exec", "echo", "hi").String())
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = stream(t, e, nil)
	if !httpstream.IsUpgradeFailure(err) {
		t.Fatalf("got %v, want an upgrade failure, which makes kubectl fall back to SPDY", err)
	}
	if n := streams.execs.Load(); n != 0 {
		t.Errorf("the command ran %d times", n)
	}
}

func TestExecAsKubectlDoesFallsBackToSPDYAndRunsOnce(t *testing.T) {
	cfg, streams := newStreamsFixture(t)
	e := kubectlExecutor(t, cfg, withStdin(execURL(cfg, "exec", "cat")))
	stdout, _, err := stream(t, e, strings.NewReader("round trip\n"))
	if err != nil || stdout != "round trip\n" {
		t.Errorf("stdout %q err %v", stdout, err)
	}
	if n := streams.execs.Load(); n != 1 {
		t.Errorf("the command ran %d times, want 1", n)
	}
	_, _, err = stream(t, kubectlExecutor(t, cfg, execURL(cfg, "exec", "exit", "42")), nil)
	if err == nil || err.Error() != "command terminated with exit code 42" {
		t.Errorf("got %v", err)
	}
}

func TestExecUnknownContainerIs404(t *testing.T) {
	cfg, _ := newStreamsFixture(t)
	u, _ := url.Parse(cfg.Host + "/exec/default/web/nope?command=true&stdout=true")
	e, err := remotecommand.NewSPDYExecutor(cfg, http.MethodPost, u)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = stream(t, e, nil)
	if err == nil || !strings.Contains(err.Error(), `container "nope" not found in pod "web"`) {
		t.Errorf("got %v", err)
	}
}

func TestExecWithAUIDChecksItIsThePods(t *testing.T) {
	cfg, _ := newStreamsFixture(t)
	for uid, wantErr := range map[string]string{"uid-web": "", "uid-other": "pod not found"} {
		u, _ := url.Parse(cfg.Host + "/exec/default/web/" + uid + "/app?command=echo&command=hi&stdout=true&stderr=true")
		e, err := remotecommand.NewSPDYExecutor(cfg, http.MethodPost, u)
		if err != nil {
			t.Fatal(err)
		}
		stdout, _, err := stream(t, e, nil)
		switch {
		case wantErr == "" && (err != nil || stdout != "hi\n"):
			t.Errorf("%s: stdout %q err %v", uid, stdout, err)
		case wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)):
			t.Errorf("%s: got %v, want %q", uid, err, wantErr)
		}
	}
}

func TestAttachOverSPDYConnectsStdinAndStdout(t *testing.T) {
	cfg, _ := newStreamsFixture(t)
	e := kubectlExecutor(t, cfg, withStdin(execURL(cfg, "attach")))
	stdout, _, err := stream(t, e, strings.NewReader("typed\n"))
	if err != nil || stdout != "typed\n" {
		t.Errorf("stdout %q err %v", stdout, err)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// forward runs a client-go port forwarder to port 8080 of default/web
// through dialer and returns the local address.
func forward(t *testing.T, dialer httpstream.Dialer) string {
	t.Helper()
	stop, ready := make(chan struct{}), make(chan struct{})
	var errOut syncBuffer // written from the forwarder's goroutines
	fw, err := portforward.NewOnAddressesForStreaming(dialer, []string{"127.0.0.1"}, []string{"0:8080"}, stop, ready, io.Discard, &errOut)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- fw.ForwardPorts() }()
	t.Cleanup(func() {
		close(stop)
		<-done
	})
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("port forward: %v (%s)", err, errOut.String())
	case <-time.After(10 * time.Second):
		t.Fatal("port forward not ready")
	}
	ports, err := fw.GetPorts()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", ports[0].Local)
}

// roundTrip sends msg through a forwarded port and reads the echo.
func roundTrip(t *testing.T, addr, msg string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatal(err)
	}
	want := len("sandbox-web:8080 ") + len(msg)
	buf := make([]byte, want)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("read echo: %v (got %q)", err, buf)
	}
	return string(buf)
}

func portForwardURL(cfg *rest.Config) *url.URL {
	u, _ := url.Parse(cfg.Host + "/portForward/default/web")
	return u
}

func TestPortForwardOverSPDYReachesThePodSandbox(t *testing.T) {
	cfg, _ := newStreamsFixture(t)
	transport, upgrader, err := spdy.RoundTripperFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	addr := forward(t, spdy.NewDialerForStreaming(upgrader, &http.Client{Transport: transport}, http.MethodPost, portForwardURL(cfg)))
	for _, msg := range []string{"first", "second connection"} {
		if got := roundTrip(t, addr, msg); got != "sandbox-web:8080 "+msg {
			t.Errorf("got %q", got)
		}
	}
}

func TestPortForwardOverWebSocketTunnelReachesThePodSandbox(t *testing.T) {
	cfg, _ := newStreamsFixture(t)
	dialer, err := portforward.NewSPDYOverWebsocketDialerForStreaming(portForwardURL(cfg), cfg)
	if err != nil {
		t.Fatal(err)
	}
	addr := forward(t, dialer)
	for _, msg := range []string{"tunnelled", "again"} {
		if got := roundTrip(t, addr, msg); got != "sandbox-web:8080 "+msg {
			t.Errorf("got %q", got)
		}
	}
}

func TestPortForwardWithAnotherPodsUIDIs404(t *testing.T) {
	cfg, _ := newStreamsFixture(t)
	transport, upgrader, err := spdy.RoundTripperFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(cfg.Host + "/portForward/default/web/some-other-uid")
	_, _, err = spdy.NewDialerForStreaming(upgrader, &http.Client{Transport: transport}, http.MethodPost, u).Dial("portforward.k8s.io")
	if err == nil || !strings.Contains(err.Error(), "pod not found") {
		t.Errorf("got %v", err)
	}
	u, _ = url.Parse(cfg.Host + "/portForward/default/web/uid-web")
	conn, _, err := spdy.NewDialerForStreaming(upgrader, &http.Client{Transport: transport}, http.MethodPost, u).Dial("portforward.k8s.io")
	if err != nil {
		t.Fatalf("with the pod's own UID: %v", err)
	}
	conn.Close()
}

func TestServeRequiresAClientCertificate(t *testing.T) {
	cfg, _ := newStreamsFixture(t)
	tc, err := rest.TLSConfigFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	get := func(tc *tls.Config) (*http.Response, error) {
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}, Timeout: 10 * time.Second}
		return c.Get(cfg.Host + "/healthz")
	}
	res, err := get(tc)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || string(body) != "ok" || res.ProtoMajor != 1 {
		t.Errorf("healthz: %s %d %q", res.Proto, res.StatusCode, body)
	}

	anon := tc.Clone()
	anon.Certificates, anon.GetClientCertificate = nil, nil
	if res, err := get(anon); err == nil {
		res.Body.Close()
		t.Errorf("a client without a certificate got %d", res.StatusCode)
	}
}

func TestServeEndsStreamSessionsWhenItsContextEnds(t *testing.T) {
	pods := newFakePods()
	pods.addContainer("default", "web", "app", fakeContainer{id: "app-1"}, true)
	cfg, stop := startServer(t, pods, &fakeStreams{})
	transport, upgrader, err := spdy.RoundTripperFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	conn, _, err := spdy.NewDialerForStreaming(upgrader, &http.Client{Transport: transport}, http.MethodPost, portForwardURL(cfg)).Dial("portforward.k8s.io")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stop()
	select {
	case <-conn.CloseChan():
	case <-time.After(10 * time.Second):
		t.Fatal("the port-forward session outlived Serve")
	}
}

// fixedSize is a terminal that never changes size.
type fixedSize struct{ sent bool }

func (f *fixedSize) Next() *remotecommand.TerminalSize {
	if f.sent {
		return nil // no more changes
	}
	f.sent = true
	return &remotecommand.TerminalSize{Width: 120, Height: 40}
}

func TestExecWithATerminalOverSPDYDeliversItsSize(t *testing.T) {
	cfg, _ := newStreamsFixture(t)
	u, _ := url.Parse(cfg.Host + "/exec/default/web/app?command=size&stdin=true&stdout=true&tty=true")
	e, err := remotecommand.NewSPDYExecutor(cfg, http.MethodPost, u)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	stdin, _ := io.Pipe() // an idle terminal
	var out bytes.Buffer
	err = e.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: stdin, Stdout: &out, Tty: true, TerminalSizeQueue: &fixedSize{}})
	if err != nil || out.String() != "120x40\n" {
		t.Errorf("stdout %q err %v", out.String(), err)
	}
}

func TestExecOverWebSocketV4IsLeftToTheLibrary(t *testing.T) {
	cfg, _ := newStreamsFixture(t)
	tc, err := rest.TLSConfigFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d := gwebsocket.Dialer{TLSClientConfig: tc, Subprotocols: []string{"v4.channel.k8s.io"}, HandshakeTimeout: 10 * time.Second}
	u := execURL(cfg, "exec", "echo", "over", "v4")
	u.Scheme = "wss"
	ws, res, err := d.Dial(u.String(), nil)
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, res)
	}
	defer ws.Close()
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	var stdout string
	for {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("read: %v (stdout so far %q)", err, stdout)
		}
		if len(msg) == 0 {
			continue
		}
		switch msg[0] {
		case 1:
			stdout += string(msg[1:])
		case 3:
			if stdout != "over v4\n" || !strings.Contains(string(msg[1:]), `"status":"Success"`) {
				t.Errorf("stdout %q, status %s", stdout, msg[1:])
			}
			return
		}
	}
}

package apiserver

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiff-sh/skiff/internal/etcd"
	"github.com/skiff-sh/skiff/internal/registry"
	"github.com/skiff-sh/skiff/internal/store"
)

const proxyToken = "proxy-test-token"

// fakeKubelet is a node agent's HTTPS API that requires a client
// certificate and records what reaches it.
type fakeKubelet struct {
	srv *httptest.Server
	// release lets the followed log body end.
	release chan struct{}

	mu   sync.Mutex
	seen []*http.Request
}

func (k *fakeKubelet) last(t *testing.T) *http.Request {
	t.Helper()
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.seen) == 0 {
		t.Fatal("no request reached the node agent")
	}
	return k.seen[len(k.seen)-1]
}

func (k *fakeKubelet) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	k.mu.Lock()
	k.seen = append(k.seen, r.Clone(context.Background()))
	k.mu.Unlock()
	switch {
	case r.URL.Path == "/containerLogs/default/one/c":
		w.Header().Set("Content-Type", "application/octet-stream")
		io.WriteString(w, "first\n")
		w.(http.Flusher).Flush()
		select {
		case <-k.release:
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
		io.WriteString(w, "second\n")
	case r.URL.Path == "/containerLogs/default/waiting/c":
		http.Error(w, `container "c" in pod "waiting" is waiting to start: ContainerCreating`, http.StatusBadRequest)
	case strings.HasPrefix(r.URL.Path, "/attach/"):
		w.Header().Set("X-Agent", "fake")
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, "attach refused\n")
	case r.Header.Get("Upgrade") != "":
		echoUpgrade(w, r)
	default:
		io.WriteString(w, "ok\n")
	}
}

// echoUpgrade switches protocols and echoes what the client sends.
func echoUpgrade(w http.ResponseWriter, r *http.Request) {
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: %s\r\n", r.Header.Get("Upgrade"))
	if p := r.Header.Get("Sec-WebSocket-Protocol"); p != "" {
		fmt.Fprintf(brw, "Sec-WebSocket-Protocol: %s\r\n", p)
	}
	if v := r.Header.Get("X-Stream-Protocol-Version"); v != "" {
		fmt.Fprintf(brw, "X-Stream-Protocol-Version: %s\r\n", strings.TrimSpace(strings.Split(v, ",")[0]))
	}
	brw.WriteString("\r\n")
	brw.Flush()
	io.Copy(conn, brw.Reader)
}

// clientCert is a CA and a client certificate it signed, for the API
// server's side of the connection to node agents.
func clientCert(t *testing.T) (*x509.CertPool, tls.Certificate) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "agent-client-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "skiff-apiserver"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return pool, tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// newFakeKubelet starts a node agent and returns it with the TLS
// configuration the API server needs to reach it.
func newFakeKubelet(t *testing.T) (*fakeKubelet, *tls.Config) {
	t.Helper()
	clientCAs, cert := clientCert(t)
	k := &fakeKubelet{release: make(chan struct{})}
	k.srv = httptest.NewUnstartedServer(k)
	k.srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clientCAs}
	k.srv.StartTLS()
	t.Cleanup(k.srv.Close)
	roots := x509.NewCertPool()
	roots.AddCert(k.srv.Certificate())
	return k, &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{cert}}
}

func pod(name, node string, containers ...string) *corev1.Pod {
	p := &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}, Spec: corev1.PodSpec{NodeName: node}}
	for _, c := range containers {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: c, Image: "busybox"})
	}
	return p
}

// newProxyServer serves the API over a store holding pods on node n1, whose
// agent is at agentAddr, and on nodes that cannot be reached.
func newProxyServer(t *testing.T, kubeletTLS *tls.Config, agentAddr string) string {
	t.Helper()
	ds, err := etcd.Open(context.Background(), etcd.Config{DataDir: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ds.Close() })
	st := store.New(ds.Client, store.NewJSONCodec(registry.Scheme), nil, nil)

	host, portStr, _ := net.SplitHostPort(agentAddr)
	port, _ := strconv.Atoi(portStr)
	annotated := pod("annotated", "n1", "a", "b")
	annotated.Annotations = map[string]string{defaultContainerAnnotation: "b"}
	objects := map[string]runtime.Object{
		"/registry/nodes/n1": &corev1.Node{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Node"}, ObjectMeta: metav1.ObjectMeta{Name: "n1"},
			Status: corev1.NodeStatus{
				Addresses:       []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: "n1.invalid"}, {Type: corev1.NodeInternalIP, Address: host}},
				DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: int32(port)}}}},
		"/registry/nodes/n2": &corev1.Node{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Node"}, ObjectMeta: metav1.ObjectMeta{Name: "n2"},
			Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: host}}}},
		"/registry/pods/default/one":       pod("one", "n1", "c"),
		"/registry/pods/default/two":       pod("two", "n1", "a", "b"),
		"/registry/pods/default/annotated": annotated,
		"/registry/pods/default/waiting":   pod("waiting", "n1", "c"),
		"/registry/pods/default/pending":   pod("pending", "", "c"),
		"/registry/pods/default/lost":      pod("lost", "gone", "c"),
		"/registry/pods/default/portless":  pod("portless", "n2", "c"),
	}
	for key, obj := range objects {
		if _, err := st.Create(context.Background(), key, obj); err != nil {
			t.Fatal(err)
		}
	}
	s := New(Config{Tokens: map[string]User{proxyToken: {Name: "admin"}}, KubeletTLS: kubeletTLS}, st, registry.All())
	api := httptest.NewServer(s.Handler())
	t.Cleanup(api.Close)
	return api.URL
}

func apiRequest(t *testing.T, method, url string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	req.Header.Set("Authorization", "Bearer "+proxyToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func readStatus(t *testing.T, resp *http.Response) metav1.Status {
	t.Helper()
	var st metav1.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil || st.Kind != "Status" {
		t.Fatalf("reply %d is not a Status: %v %+v", resp.StatusCode, err, st)
	}
	return st
}

const podsPath = "/api/v1/namespaces/default/pods/"

func TestPodLogStreamsFromTheNodeAgentLineByLine(t *testing.T) {
	k, kt := newFakeKubelet(t)
	api := newProxyServer(t, kt, k.srv.Listener.Addr().String())
	resp := apiRequest(t, http.MethodGet, api+podsPath+"one/log?follow=true&tailLines=10&pretty=true")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/plain" {
		t.Fatalf("got %d %q, want 200 text/plain", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	br := bufio.NewReader(resp.Body)
	first := make(chan string, 1)
	go func() {
		line, _ := br.ReadString('\n')
		first <- line
	}()
	select {
	case line := <-first:
		if line != "first\n" {
			t.Fatalf("first line %q", line)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the first line was not flushed before the body ended")
	}
	close(k.release)
	rest, _ := io.ReadAll(br)
	if string(rest) != "second\n" {
		t.Errorf("rest of the body %q", rest)
	}
	seen := k.last(t)
	if seen.URL.Path != "/containerLogs/default/one/c" || seen.URL.RawQuery != "follow=true&tailLines=10" {
		t.Errorf("agent got %s?%s", seen.URL.Path, seen.URL.RawQuery)
	}
	if seen.Header.Get("Authorization") != "" {
		t.Error("the user's credentials reached the node agent")
	}
	if cn := seen.TLS.PeerCertificates[0].Subject.CommonName; cn != "skiff-apiserver" {
		t.Errorf("agent saw client certificate %q", cn)
	}
}

func TestPodSubresourcesPickAndCheckTheContainer(t *testing.T) {
	k, kt := newFakeKubelet(t)
	api := newProxyServer(t, kt, k.srv.Listener.Addr().String())
	cases := []struct {
		method, path string
		wantAgent    string // path?query reaching the agent
	}{
		{"GET", "two/log?container=b&timestamps=1&previous=false", "/containerLogs/default/two/b?timestamps=true"},
		{"GET", "annotated/log", "/containerLogs/default/annotated/b?"},
		{"POST", "annotated/exec?command=ls&command=-l&stdout=true", "/exec/default/annotated/b?command=ls&command=-l&stdout=true"},
		{"GET", "one/exec?command=date&container=c", "/exec/default/one/c?command=date"},
		{"POST", "two/portforward?ports=80", "/portForward/default/two?ports=80"},
	}
	for _, c := range cases {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			resp := apiRequest(t, c.method, api+podsPath+c.path)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("got %d", resp.StatusCode)
			}
			seen := k.last(t)
			if got := seen.URL.Path + "?" + seen.URL.RawQuery; got != c.wantAgent {
				t.Errorf("agent got %s, want %s", got, c.wantAgent)
			}
		})
	}
}

func TestPodSubresourceErrorsAreStatuses(t *testing.T) {
	k, kt := newFakeKubelet(t)
	api := newProxyServer(t, kt, k.srv.Listener.Addr().String())
	cases := []struct {
		method, path string
		code         int
		message      string
	}{
		{"GET", "nope/log", 404, `pods "nope" not found`},
		{"GET", "nope/exec?command=ls", 404, `pods "nope" not found`},
		{"GET", "two/log", 400, "a container name must be specified for pod two, choose one of: [a b]"},
		{"POST", "two/exec?command=ls", 400, "a container name must be specified for pod two, choose one of: [a b]"},
		{"GET", "two/log?container=x", 400, "container x is not valid for pod two"},
		{"GET", "annotated/attach?container=x", 400, "container x is not valid for pod annotated"},
		{"GET", "pending/log", 400, "pod pending does not have a host assigned"},
		{"POST", "pending/portforward", 400, "pod pending does not have a host assigned"},
		{"GET", "lost/log", 503, `node "gone" of pod lost is not registered`},
		{"GET", "portless/exec?command=ls", 503, `node "n2" does not report its node agent port (status.daemonEndpoints.kubeletEndpoint.Port)`},
		{"GET", "one/log?tailLines=ten", 400, `invalid tailLines "ten": must be an integer`},
		{"GET", "waiting/log", 400, `container "c" in pod "waiting" is waiting to start: ContainerCreating`},
		{"POST", "one/log", 405, ""},
		{"PUT", "one/exec", 405, ""},
	}
	for _, c := range cases {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			resp := apiRequest(t, c.method, api+podsPath+c.path)
			st := readStatus(t, resp)
			if resp.StatusCode != c.code || int(st.Code) != c.code || (c.message != "" && st.Message != c.message) {
				t.Errorf("got %d %q, want %d %q", resp.StatusCode, st.Message, c.code, c.message)
			}
		})
	}
}

func TestPodSubresourcesWithoutAgentConnectionAreUnavailable(t *testing.T) {
	api := newProxyServer(t, nil, "127.0.0.1:1")
	for _, sub := range []string{"log", "exec", "attach", "portforward"} {
		resp := apiRequest(t, http.MethodGet, api+podsPath+"one/"+sub)
		st := readStatus(t, resp)
		want := "pods/" + sub + " needs a connection to the node agents, and none is configured"
		if resp.StatusCode != http.StatusServiceUnavailable || st.Message != want {
			t.Errorf("%s: got %d %q", sub, resp.StatusCode, st.Message)
		}
	}
}

func TestUnreachableNodeAgentIsUnavailable(t *testing.T) {
	k, kt := newFakeKubelet(t)
	addr := k.srv.Listener.Addr().String()
	k.srv.Close()
	api := newProxyServer(t, kt, addr)
	resp := apiRequest(t, http.MethodGet, api+podsPath+"one/log")
	st := readStatus(t, resp)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.HasPrefix(st.Message, "error dialing backend: ") {
		t.Errorf("got %d %q", resp.StatusCode, st.Message)
	}
}

// upgrade sends an upgrade request for path to the API server over a raw
// connection and returns the reply and the connection.
func upgrade(t *testing.T, api, method, path string, header http.Header) (*http.Response, net.Conn, *bufio.Reader) {
	t.Helper()
	u, _ := url.Parse(api + podsPath + path)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	req, _ := http.NewRequest(method, u.String(), nil)
	req.Header = header.Clone()
	req.Header.Set("Authorization", "Bearer "+proxyToken)
	req.Header.Set("Connection", "Upgrade")
	if err := req.Write(conn); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		t.Fatal(err)
	}
	return resp, conn, br
}

func TestExecUpgradeIsTunnelledToTheNodeAgent(t *testing.T) {
	k, kt := newFakeKubelet(t)
	api := newProxyServer(t, kt, k.srv.Listener.Addr().String())
	cases := []struct {
		name, method string
		header       http.Header
		// protocol is the reply header naming the negotiated stream
		// protocol, and want its value.
		protocol, want string
	}{
		{"websocket", http.MethodGet, http.Header{"Upgrade": {"websocket"}, "Sec-Websocket-Key": {"dGhlIHNhbXBsZSBub25jZQ=="},
			"Sec-Websocket-Version": {"13"}, "Sec-Websocket-Protocol": {"v5.channel.k8s.io"}},
			"Sec-WebSocket-Protocol", "v5.channel.k8s.io"},
		{"spdy", http.MethodPost, http.Header{"Upgrade": {"SPDY/3.1"}, "X-Stream-Protocol-Version": {"v4.channel.k8s.io, v3.channel.k8s.io"}},
			"X-Stream-Protocol-Version", "v4.channel.k8s.io"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, conn, br := upgrade(t, api, c.method, "one/exec?command=cat&stdin=true&stdout=true", c.header)
			if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Upgrade") != c.header.Get("Upgrade") {
				t.Fatalf("got %d upgrade %q", resp.StatusCode, resp.Header.Get("Upgrade"))
			}
			if got := resp.Header.Get(c.protocol); got != c.want {
				t.Errorf("negotiated %s %q, want %q", c.protocol, got, c.want)
			}
			if _, err := io.WriteString(conn, "hello agent"); err != nil {
				t.Fatal(err)
			}
			echo := make([]byte, len("hello agent"))
			if _, err := io.ReadFull(br, echo); err != nil || string(echo) != "hello agent" {
				t.Fatalf("echo %q: %v", echo, err)
			}
			seen := k.last(t)
			if seen.URL.Path != "/exec/default/one/c" || seen.URL.RawQuery != "command=cat&stdin=true&stdout=true" {
				t.Errorf("agent got %s?%s", seen.URL.Path, seen.URL.RawQuery)
			}
			if seen.Header.Get("Connection") != "Upgrade" {
				t.Errorf("agent got Connection %q", seen.Header.Get("Connection"))
			}
			for key := range c.header {
				if seen.Header.Get(key) != c.header.Get(key) {
					t.Errorf("agent got %s %q, want %q", key, seen.Header.Get(key), c.header.Get(key))
				}
			}
		})
	}
}

func TestRefusedUpgradeReachesTheClientUnchanged(t *testing.T) {
	k, kt := newFakeKubelet(t)
	api := newProxyServer(t, kt, k.srv.Listener.Addr().String())
	resp, _, _ := upgrade(t, api, http.MethodGet, "one/attach?stdout=true", http.Header{"Upgrade": {"websocket"},
		"Sec-Websocket-Key": {"dGhlIHNhbXBsZSBub25jZQ=="}, "Sec-Websocket-Version": {"13"}, "Sec-Websocket-Protocol": {"v5.channel.k8s.io"}})
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadRequest || string(body) != "attach refused\n" ||
		resp.Header.Get("X-Agent") != "fake" || resp.Header.Get("Content-Type") != "text/plain" {
		t.Errorf("got %d %q %v", resp.StatusCode, body, resp.Header)
	}
}

func TestPodContainerListsEveryContainerWhenAmbiguous(t *testing.T) {
	p := pod("p", "n", "a", "b")
	p.Spec.InitContainers = []corev1.Container{{Name: "init"}}
	p.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debug"}}}
	_, err := podContainer(p, "")
	if st := statusOf(t, err); st.Message != "a container name must be specified for pod p, choose one of: [init a b debug]" {
		t.Errorf("got %q", st.Message)
	}
	for _, name := range []string{"init", "debug", "b"} {
		if got, err := podContainer(p, name); err != nil || got != name {
			t.Errorf("%s: got %q %v", name, got, err)
		}
	}
	if _, err := podContainer(pod("empty", "n"), ""); statusOf(t, err).Message != "a container name must be specified for pod empty" {
		t.Errorf("no containers: %v", err)
	}
}

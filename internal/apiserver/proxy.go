package apiserver

// pods/log, exec, attach and portforward are served by the node agent that
// runs the pod, through its kubelet-style HTTPS API. As kube-apiserver does,
// the API server checks the pod and its container, finds the node's address
// and proxies the request: log bodies are streamed with a flush per write,
// and upgrade requests (WebSocket or SPDY) are tunnelled after the backend's
// 101, so the client and the agent negotiate the stream protocol between
// themselves.

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiff-sh/skiff/internal/store"
)

// defaultContainerAnnotation names the container kubectl picks when none is
// given; the API server honours it too when the pod has several.
const defaultContainerAnnotation = "kubectl.kubernetes.io/default-container"

// maxBackendError bounds how much of a node agent's error reply is read.
const maxBackendError = 64 << 10

// newKubeletTransport dials node agents with cfg's client certificate and
// CA. It returns nil when cfg is nil: no agent connection is configured.
func newKubeletTransport(cfg *tls.Config) *http.Transport {
	if cfg == nil {
		return nil
	}
	tc := cfg.Clone()
	// Upgrades need HTTP/1.1: an h2 connection cannot be hijacked.
	tc.NextProtos = []string{"http/1.1"}
	return &http.Transport{
		// No Proxy: node agents are reached directly, whatever HTTPS_PROXY
		// the host sets for image pulls.
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tc,
		TLSHandshakeTimeout:   10 * time.Second,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: time.Minute,
		MaxIdleConnsPerHost:   8,
		// Compressed log bodies would be buffered by the decompressor.
		DisableCompression: true,
	}
}

// proxyPod serves pods/log, exec, attach and portforward.
func (s *Server) proxyPod(q *request) error {
	sub := q.ri.Subresource
	if (sub == "log" && q.ri.Verb != "get") || (q.ri.Verb != "get" && q.ri.Verb != "create") {
		return apierrors.NewMethodNotSupported(schema.GroupResource{Resource: "pods/" + sub}, q.ri.Verb)
	}
	if s.kubelet == nil {
		return apierrors.NewServiceUnavailable(fmt.Sprintf("pods/%s needs a connection to the node agents, and none is configured", sub))
	}
	obj, err := s.store.Get(q.ctx, q.key(q.ri.Name))
	if err != nil {
		return err
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return fmt.Errorf("pod %s: stored object is a %T", q.ri.Name, obj)
	}
	target, err := podTarget(sub, q.r.URL.Query(), pod)
	if err != nil {
		return err
	}
	if pod.Spec.NodeName == "" {
		return badRequest("pod %s does not have a host assigned", pod.Name)
	}
	if target.Host, err = s.nodeAgentHost(q.ctx, pod); err != nil {
		return err
	}
	s.reverseProxy(q, target, sub == "log").ServeHTTP(q.w, q.r)
	return nil
}

// podTarget is the node agent URL, without its host, that serves sub for
// pod: kubelet's paths and query parameters.
func podTarget(sub string, query url.Values, pod *corev1.Pod) (*url.URL, error) {
	u := &url.URL{Scheme: "https"}
	if sub == "portforward" {
		u.Path = fmt.Sprintf("/portForward/%s/%s", pod.Namespace, pod.Name)
		u.RawQuery = query.Encode()
		return u, nil
	}
	container, err := podContainer(pod, query.Get("container"))
	if err != nil {
		return nil, err
	}
	query.Del("container")
	switch sub {
	case "log":
		u.Path = fmt.Sprintf("/containerLogs/%s/%s/%s", pod.Namespace, pod.Name, container)
		u.RawQuery, err = logQuery(query)
		if err != nil {
			return nil, err
		}
	default: // exec, attach
		u.Path = fmt.Sprintf("/%s/%s/%s/%s", sub, pod.Namespace, pod.Name, container)
		u.RawQuery = query.Encode()
	}
	return u, nil
}

// podContainer checks a requested container, or picks one when none is
// given: the only container, else the default-container annotation's.
// The messages are kube-apiserver's.
func podContainer(pod *corev1.Pod, name string) (string, error) {
	var all []string
	for _, c := range pod.Spec.InitContainers {
		all = append(all, c.Name)
	}
	for _, c := range pod.Spec.Containers {
		all = append(all, c.Name)
	}
	for _, c := range pod.Spec.EphemeralContainers {
		all = append(all, c.Name)
	}
	has := func(n string) bool {
		for _, c := range all {
			if c == n {
				return true
			}
		}
		return false
	}
	if name != "" {
		if !has(name) {
			return "", badRequest("container %s is not valid for pod %s", name, pod.Name)
		}
		return name, nil
	}
	switch len(pod.Spec.Containers) {
	case 1:
		return pod.Spec.Containers[0].Name, nil
	case 0:
		return "", badRequest("a container name must be specified for pod %s", pod.Name)
	}
	if d := pod.Annotations[defaultContainerAnnotation]; d != "" && has(d) {
		return d, nil
	}
	return "", badRequest("a container name must be specified for pod %s, choose one of: %s", pod.Name, all)
}

// logQuery re-encodes the PodLogOptions the node agent reads, as
// kube-apiserver does: booleans are true unless absent, "false" or "0".
func logQuery(in url.Values) (string, error) {
	out := url.Values{}
	for _, k := range []string{"follow", "previous", "timestamps"} {
		if v, ok := in[k]; ok && len(v) > 0 && v[0] != "0" && !strings.EqualFold(v[0], "false") {
			out.Set(k, "true")
		}
	}
	for _, k := range []string{"sinceSeconds", "tailLines", "limitBytes"} {
		if v := in.Get(k); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return "", badRequest("invalid %s %q: must be an integer", k, v)
			}
			out.Set(k, strconv.FormatInt(n, 10))
		}
	}
	if v := in.Get("sinceTime"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return "", badRequest("invalid sinceTime %q: must be RFC 3339", v)
		}
		out.Set("sinceTime", t.Format(time.RFC3339))
	}
	return out.Encode(), nil
}

// nodeAgentHost is host:port of the agent on the pod's node: the Node's
// InternalIP (else Hostname, then the other addresses) and kubelet port.
func (s *Server) nodeAgentHost(ctx context.Context, pod *corev1.Pod) (string, error) {
	nodes := s.resources[schema.GroupVersionResource{Version: "v1", Resource: "nodes"}]
	if nodes == nil {
		return "", errors.New("nodes are not served")
	}
	name := pod.Spec.NodeName
	obj, err := s.store.Get(ctx, nodes.Key()+name)
	if errors.Is(err, store.ErrNotFound) {
		return "", apierrors.NewServiceUnavailable(fmt.Sprintf("node %q of pod %s is not registered", name, pod.Name))
	}
	if err != nil {
		return "", fmt.Errorf("get node %s: %w", name, err)
	}
	node, ok := obj.(*corev1.Node)
	if !ok {
		return "", fmt.Errorf("node %s: stored object is a %T", name, obj)
	}
	port := node.Status.DaemonEndpoints.KubeletEndpoint.Port
	if port <= 0 {
		return "", apierrors.NewServiceUnavailable(fmt.Sprintf("node %q does not report its node agent port (status.daemonEndpoints.kubeletEndpoint.Port)", name))
	}
	for _, t := range []corev1.NodeAddressType{corev1.NodeInternalIP, corev1.NodeHostName, corev1.NodeInternalDNS, corev1.NodeExternalIP, corev1.NodeExternalDNS} {
		for _, a := range node.Status.Addresses {
			if a.Type == t && a.Address != "" {
				return net.JoinHostPort(a.Address, strconv.Itoa(int(port))), nil
			}
		}
	}
	return "", apierrors.NewServiceUnavailable(fmt.Sprintf("node %q has no address in its status to reach its node agent", name))
}

// reverseProxy forwards q to target. Upgrade replies, 101 or not, pass
// through unchanged: kubectl falls back from WebSocket to SPDY on a non-101.
// A log error reply becomes a Status, as kube-apiserver makes it.
func (s *Server) reverseProxy(q *request, target *url.URL, logs bool) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			u := *target
			pr.Out.URL = &u
			pr.Out.Host = ""
			// The agent trusts the API server's client certificate; the
			// user's own credentials stay here.
			pr.Out.Header.Del("Authorization")
			pr.Out.Header.Del("Accept-Encoding")
		},
		Transport:     s.kubelet,
		FlushInterval: -1,
		ModifyResponse: func(res *http.Response) error {
			if res.StatusCode == http.StatusSwitchingProtocols {
				// The hijacked connection bypasses WriteHeader.
				if rec, ok := q.w.(*statusRecorder); ok && rec.code == 0 {
					rec.code = res.StatusCode
				}
				return nil
			}
			if !logs {
				return nil
			}
			if res.StatusCode < 200 || res.StatusCode > 299 {
				return backendError(res)
			}
			res.Header.Set("Content-Type", "text/plain")
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if r.Context().Err() != nil {
				return // the client went away
			}
			var se *apierrors.StatusError
			if !errors.As(err, &se) {
				s.log.Debug("proxy to node agent", "url", target.String(), "err", err)
				err = apierrors.NewServiceUnavailable(fmt.Sprintf("error dialing backend: %v", err))
			}
			s.writeError(w, r, err)
		},
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
}

// backendError turns a node agent's error reply into a Status: its own
// Status if it sent one, else one carrying its text.
func backendError(res *http.Response) error {
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, maxBackendError))
	if err != nil {
		return fmt.Errorf("read node agent reply: %w", err)
	}
	var st metav1.Status
	if json.Unmarshal(body, &st) == nil && st.Kind == "Status" && st.Code != 0 {
		return &apierrors.StatusError{ErrStatus: st}
	}
	msg := strings.TrimSpace(string(body))
	switch res.StatusCode {
	case http.StatusBadRequest:
		return apierrors.NewBadRequest(msg)
	case http.StatusInternalServerError:
		return apierrors.NewInternalError(errors.New(msg))
	}
	se := apierrors.NewGenericServerResponse(res.StatusCode, "", schema.GroupResource{}, "", msg, 0, false)
	if msg != "" {
		se.ErrStatus.Message = msg
	}
	return se
}

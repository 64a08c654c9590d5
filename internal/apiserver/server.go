// Package apiserver serves the Kubernetes API over HTTPS on top of the store:
// routing, discovery, OpenAPI, the REST verbs, patch types, watch streaming,
// Table printing and authentication (client certificates, static bearer
// tokens and the service account tokens it signs for serviceaccounts/token);
// pod logs and streams are proxied to the node agents. What is particular to
// one resource comes from the registry package; objects live in the store.
package apiserver

import (
	"context"
	"crypto"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/version"

	"github.com/skiff-sh/skiff/internal/registry"
	"github.com/skiff-sh/skiff/internal/store"
)

// maxBodyBytes is the largest request body accepted, as in kube-apiserver.
const maxBodyBytes = 3 << 20

// Config is the API server's fixed configuration.
type Config struct {
	// Address is host:port to listen on.
	Address string
	// TLS serves HTTPS; ClientCAs in it verifies client certificates.
	TLS *tls.Config
	// Tokens maps bearer tokens to the users they authenticate.
	Tokens map[string]User
	// ServiceAccountKey signs the tokens serviceaccounts/token issues and
	// verifies the service account tokens clients present: an RSA key
	// signs with RS256, an ECDSA key with ES256, ES384 or ES512 by its
	// curve. Nil issues and accepts none.
	ServiceAccountKey crypto.Signer
	// ServiceAccountIssuer is the tokens' iss claim and the API server's
	// audience; empty means DefaultServiceAccountIssuer.
	ServiceAccountIssuer string
	// Version is reported by /version.
	Version version.Info
	// Admission runs on creates and updates; nil means none.
	Admission Admission
	// OpenAPI serves /openapi/v2 and /openapi/v3; nil means 404.
	OpenAPI http.Handler
	// Metrics serves /metrics; nil means 404.
	Metrics http.Handler
	// Observer records request metrics; nil means none.
	Observer Observer
	// KubeletTLS connects to node agents for pods/log, exec, attach and
	// portforward: a client certificate and the CA that signed the agents'
	// serving certificates. Nil answers those with 503.
	KubeletTLS *tls.Config
	Log        *slog.Logger
	// Extra handlers by path: Public ones are served to anyone (e.g. the
	// CA agents check against their token), Private ones after
	// authentication (UserFrom gives the user).
	Public, Private map[string]http.Handler
}

// Observer records per-request metrics.
type Observer interface {
	ObserveRequest(verb, group, resource string, code int, d time.Duration)
	WatchStarted(group, resource string) (done func())
}

// Admission mutates and checks objects before they are stored.
type Admission interface {
	// Admit runs on create (old == nil) and update. It may change obj.
	Admit(ctx context.Context, op Operation, r *registry.Resource, obj, old runtime.Object) error
	// Released is told when an object is deleted, so that what it held
	// (a service IP) can be freed.
	Released(ctx context.Context, r *registry.Resource, obj runtime.Object)
}

// Operation names the write being admitted.
type Operation string

// Admission operations.
const (
	Create Operation = "CREATE"
	Update Operation = "UPDATE"
)

// User is an authenticated identity.
type User struct {
	Name   string
	Groups []string
	// UID and Extra are set for service accounts, as Kubernetes does: the
	// account's UID, and the pod, node and credential ID a token is bound to.
	UID   string
	Extra map[string][]string
}

// Server is the API server.
type Server struct {
	cfg       Config
	store     *store.Store
	codecs    *codecs
	resources map[schema.GroupVersionResource]*registry.Resource
	ordered   []*registry.Resource
	log       *slog.Logger
	ready     atomic.Bool
	discovery *discoveryDocs
	// kubelet reaches node agents; nil when KubeletTLS is.
	kubelet *http.Transport
	// tokens issues and verifies service account tokens; nil when
	// ServiceAccountKey is.
	tokens *tokenIssuer
}

// New returns an API server over the store for the given resources.
func New(cfg Config, st *store.Store, resources []*registry.Resource) *Server {
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, store: st, codecs: newCodecs(registry.Scheme), resources: map[schema.GroupVersionResource]*registry.Resource{}, ordered: resources, log: log,
		kubelet: newKubeletTransport(cfg.KubeletTLS)}
	for _, r := range resources {
		s.resources[r.GroupVersionResource] = r
	}
	s.discovery = buildDiscovery(resources)
	if cfg.ServiceAccountKey != nil {
		issuer := cfg.ServiceAccountIssuer
		if issuer == "" {
			issuer = DefaultServiceAccountIssuer
		}
		tokens, err := newTokenIssuer(cfg.ServiceAccountKey, issuer)
		if err != nil {
			// serviceaccounts/token then answers 503 and no token is accepted.
			log.Error("service account tokens disabled", "err", err)
		}
		s.tokens = tokens
	}
	return s
}

// SetReady marks the server ready for /readyz once its start-up work is done.
func (s *Server) SetReady() { s.ready.Store(true) }

// Handler returns the whole HTTP handler, authentication included.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", s.health)
	mux.HandleFunc("/livez", s.health)
	mux.HandleFunc("/readyz", s.readyz)
	mux.HandleFunc("/healthz/", s.health)
	mux.HandleFunc("/livez/", s.health)
	mux.HandleFunc("/readyz/", s.readyz)
	mux.HandleFunc("/version", s.version)
	mux.HandleFunc("/version/", s.version)
	mux.HandleFunc("/api", s.serveAPI)
	mux.HandleFunc("/api/", s.serveAPI)
	mux.HandleFunc("/apis", s.serveAPIs)
	mux.HandleFunc("/apis/", s.serveAPIs)
	if s.cfg.OpenAPI != nil {
		mux.Handle("/openapi/", s.cfg.OpenAPI)
	}
	if s.cfg.Metrics != nil {
		mux.Handle("/metrics", s.cfg.Metrics)
	}
	for path, h := range s.cfg.Private {
		mux.Handle(path, h)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/" {
			s.rootPaths(w, r)
			return
		}
		s.writeError(w, r, notFoundPath())
	})
	var h http.Handler = s.authenticate(mux)
	if len(s.cfg.Public) > 0 {
		public := http.NewServeMux()
		for path, ph := range s.cfg.Public {
			public.Handle(path, ph)
		}
		public.Handle("/", h)
		h = public
	}
	return s.recoverPanics(h)
}

// recoverPanics answers a handler's panic with a 500 Status instead of a
// reset connection, and logs it.
func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("panic serving request", "method", r.Method, "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
				s.writeError(w, r, apierrors.NewInternalError(fmt.Errorf("%v", v)))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// Run serves HTTPS until ctx ends, then shuts down gracefully.
func (s *Server) Run(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.Handler(),
		TLSConfig:         s.cfg.TLS,
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(tls.NewListener(ln, s.cfg.TLS)) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Long-running watches would hold Shutdown for its whole timeout.
	err := srv.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = srv.Close()
	}
	return err
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	if err := s.store.Ping(r.Context()); err != nil {
		http.Error(w, "etcd: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if r.URL.Query().Has("verbose") {
		fmt.Fprint(w, "[+]ping ok\n[+]etcd ok\nhealthz check passed\n")
		return
	}
	fmt.Fprint(w, "ok")
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if !s.ready.Load() {
		http.Error(w, "[-]poststarthook/skiff-bootstrap failed: not finished\nreadyz check failed", http.StatusInternalServerError)
		return
	}
	s.health(w, r)
}

func (s *Server) version(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.cfg.Version)
}

func (s *Server) rootPaths(w http.ResponseWriter, r *http.Request) {
	paths := []string{"/api", "/api/v1", "/apis", "/healthz", "/livez", "/metrics", "/openapi/v2", "/openapi/v3", "/readyz", "/version"}
	for _, g := range s.discovery.groups {
		paths = append(paths, "/apis/"+g.Name)
		for _, v := range g.Versions {
			paths = append(paths, "/apis/"+v.GroupVersion)
		}
	}
	writeJSON(w, http.StatusOK, metav1.RootPaths{Paths: paths})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", mediaJSON)
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(code)
	w.Write(data)
}

// writeError sends a Status in JSON (or protobuf when that was asked).
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	st := statusFor(err)
	st.Kind, st.APIVersion = "Status", "v1"
	if st.Code == http.StatusInternalServerError {
		s.log.Error("internal error", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if strings.Contains(r.Header.Get("Accept"), mediaProtobuf) && !strings.Contains(r.Header.Get("Accept"), mediaJSON) {
		s.writeObject(w, r, int(st.Code), st, output{Media: mediaProtobuf, Info: s.codecs.proto})
		return
	}
	writeJSON(w, int(st.Code), st)
}

// writeObject encodes obj in the negotiated format.
func (s *Server) writeObject(w http.ResponseWriter, r *http.Request, code int, obj runtime.Object, out output) {
	if obj.GetObjectKind().GroupVersionKind().Empty() {
		if gvks, _, err := registry.Scheme.ObjectKinds(obj); err == nil && len(gvks) > 0 {
			obj.GetObjectKind().SetGroupVersionKind(gvks[0])
		}
	}
	enc := out.Info.Serializer
	if enc == nil {
		enc = s.codecs.json.Serializer
		out.Media = mediaJSON
	}
	if out.Media == mediaProtobuf && !protoCapable(obj) {
		enc = s.codecs.json.Serializer
		out.Media = mediaJSON
	}
	var buf strings.Builder
	if err := enc.Encode(obj, &buf); err != nil {
		s.log.Error("encode response", "err", err)
		writeJSON(w, http.StatusInternalServerError, apierrors.NewInternalError(err).ErrStatus)
		return
	}
	w.Header().Set("Content-Type", out.Media)
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(code)
	if r.Method != http.MethodHead {
		io.WriteString(w, buf.String())
	}
}

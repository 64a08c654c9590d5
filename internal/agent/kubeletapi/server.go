// Package kubeletapi is the node agent's HTTPS API, laid out as the
// kubelet's: the API server proxies pods/log, exec, attach and portforward
// to it. Logs are read from the containers' CRI log files; exec, attach and
// port-forward sessions are negotiated by the CRI streaming library
// (k8s.io/cri-streaming) and run by the CRI runtime through Streams.
//
// The server is HTTPS only and trusts any caller whose client certificate
// the given tls.Config verifies: that is the API server's kubelet-client
// certificate, which has already authorised the user.
package kubeletapi

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cri-streaming/pkg/streaming"
)

// Pods resolves what URLs name, for pods on this node.
type Pods interface {
	// Container returns the CRI id and log path of a pod's container: its
	// newest instance, or with previous the one before it. Errors wrap
	// ErrNotFound when the pod or container is unknown (or has no previous
	// instance). Other errors, such as a container still waiting to start,
	// reach the user as a 400 with their text, as the kubelet's do.
	Container(ctx context.Context, namespace, pod, container string, previous bool) (id, logPath string, err error)
	// Running reports whether a container (by CRI id) is still running.
	Running(ctx context.Context, id string) bool
	// Sandbox returns the CRI id of the pod's running sandbox and the pod's
	// UID. Errors wrap ErrNotFound when the pod is unknown or has no
	// running sandbox.
	Sandbox(ctx context.Context, namespace, pod string) (id string, uid types.UID, err error)
}

// ErrNotFound is the error class Pods wraps for what does not exist.
var ErrNotFound = errors.New("not found")

// Streams runs exec, attach and port-forward sessions (skiff's CRI service
// implements it); it is k8s.io/cri-streaming/pkg/streaming.Runtime.
//
// Exec reports a command's non-zero exit with an error implementing
// k8s.io/utils/exec.ExitError (k8s.io/utils/exec.CodeExitError will do);
// it may be wrapped. Any other error ends the session as an internal error.
// The in, out and err streams may be nil when the client did not ask for them.
type Streams = streaming.Runtime

// Config configures Handler and Serve.
type Config struct {
	Pods    Pods
	Streams Streams
	// StreamIdleTimeout ends an exec, attach or port-forward session with
	// no traffic; 0 means 4h, the kubelet's default.
	StreamIdleTimeout time.Duration
	// StreamCreationTimeout bounds how long a SPDY client takes to open its
	// streams; 0 means 30s.
	StreamCreationTimeout time.Duration
	// Log receives what goes wrong after a reply has started; nil discards.
	Log *slog.Logger
}

const (
	defaultStreamIdleTimeout     = 4 * time.Hour
	defaultStreamCreationTimeout = 30 * time.Second
)

// server holds the handlers' configuration with defaults filled in.
type server struct {
	pods            Pods
	streams         Streams
	idleTimeout     time.Duration
	creationTimeout time.Duration
	log             *slog.Logger
}

// Handler returns the API's routes. It does no authentication: Serve's
// TLS configuration does.
func Handler(cfg Config) http.Handler {
	s := &server{
		pods:            cfg.Pods,
		streams:         cfg.Streams,
		idleTimeout:     cfg.StreamIdleTimeout,
		creationTimeout: cfg.StreamCreationTimeout,
		log:             cfg.Log,
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.idleTimeout <= 0 {
		s.idleTimeout = defaultStreamIdleTimeout
	}
	if s.creationTimeout <= 0 {
		s.creationTimeout = defaultStreamCreationTimeout
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprint(w, "ok")
	})
	mux.HandleFunc("GET /containerLogs/{namespace}/{pod}/{container}", s.containerLogs)
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		mux.HandleFunc(m+" /exec/{namespace}/{pod}/{container}", s.exec)
		mux.HandleFunc(m+" /exec/{namespace}/{pod}/{uid}/{container}", s.exec)
		mux.HandleFunc(m+" /attach/{namespace}/{pod}/{container}", s.attach)
		mux.HandleFunc(m+" /attach/{namespace}/{pod}/{uid}/{container}", s.attach)
		mux.HandleFunc(m+" /portForward/{namespace}/{pod}", s.portForward)
		mux.HandleFunc(m+" /portForward/{namespace}/{pod}/{uid}", s.portForward)
	}
	return mux
}

// Serve serves Handler over TLS on l until ctx ends.
//
// tlsConfig must carry the server certificate and should require and verify
// client certificates. HTTP/2 is off: exec, attach and port-forward upgrade
// the connection, which needs HTTP/1.1.
func Serve(ctx context.Context, l net.Listener, tlsConfig *tls.Config, cfg Config) error {
	if tlsConfig == nil {
		return errors.New("kubelet API: no TLS configuration")
	}
	tc := tlsConfig.Clone()
	tc.NextProtos = []string{"http/1.1"}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	srv := &http.Server{
		// Failed handshakes (callers without a client certificate) and the like.
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		Handler:           Handler(cfg),
		TLSConfig:         tc,
		ReadHeaderTimeout: 30 * time.Second,
		// A non-nil empty map keeps net/http from enabling HTTP/2.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
		// Requests, and the stream sessions hijacked from them, end with ctx.
		BaseContext: func(net.Listener) context.Context { return ctx },
	}

	done := make(chan error, 1)
	go func() { done <- srv.Serve(tls.NewListener(l, tc)) }()
	select {
	case err := <-done:
		return fmt.Errorf("kubelet API: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		srv.Close()
	}
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("kubelet API: %w", err)
	}
	return nil
}

// httpError writes a plain-text error, as the kubelet does.
func httpError(w http.ResponseWriter, code int, format string, args ...any) {
	http.Error(w, fmt.Sprintf(format, args...), code)
}

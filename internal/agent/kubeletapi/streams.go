package kubeletapi

// exec, attach and port-forward hand the connection to the CRI streaming
// library, which negotiates the protocol and multiplexes the streams:
//
//   - SPDY/3.1 with X-Stream-Protocol-Version v4..v1.channel.k8s.io (exec,
//     attach) or portforward.k8s.io: what kubectl falls back to.
//   - WebSocket: the library speaks channel.k8s.io up to v4 for exec and
//     attach, but kubectl offers only v5.channel.k8s.io. A WebSocket request
//     that offers nothing the library speaks gets a 400 before any upgrade,
//     so kubectl falls back to SPDY without the command having run.
//   - Port-forward over WebSocket: kubectl asks for SPDY tunnelled in
//     WebSocket (SPDY/3.1+portforward.k8s.io), which tunnel.go provides
//     around the library's SPDY server. The library's own WebSocket
//     port-forward (v4.channel.k8s.io with ?port=) is passed through.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"k8s.io/cri-streaming/pkg/streaming/portforward"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	"k8s.io/streaming/pkg/httpstream/wsstream"
	utilexec "k8s.io/utils/exec"
)

// remoteCommandProtocols are the SPDY exec and attach protocols offered, as
// the library lists them (it has no v5 handler for SPDY).
var remoteCommandProtocols = remotecommand.SupportedStreamingProtocols

// webSocketRemoteCommandProtocols are the WebSocket subprotocols the
// library's exec and attach accept; "" stands for none offered.
var webSocketRemoteCommandProtocols = []string{
	"",
	wsstream.ChannelWebSocketProtocol,
	wsstream.Base64ChannelWebSocketProtocol,
	"v4." + wsstream.ChannelWebSocketProtocol,
	"v4." + wsstream.Base64ChannelWebSocketProtocol,
}

// webSocketPortForwardProtocols are the WebSocket subprotocols the
// library's own port-forward accepts.
var webSocketPortForwardProtocols = []string{
	"",
	"v4." + wsstream.ChannelWebSocketProtocol,
	"v4." + wsstream.Base64ChannelWebSocketProtocol,
}

// exec serves /exec/{namespace}/{pod}[/{uid}]/{container}.
func (s *server) exec(w http.ResponseWriter, r *http.Request) {
	opts, ok := s.remoteCommandOptions(w, r)
	if !ok {
		return
	}
	cmd := r.URL.Query()["command"]
	if len(cmd) == 0 {
		httpError(w, http.StatusBadRequest, "you must specify a command")
		return
	}
	id, ok := s.container(w, r)
	if !ok {
		return
	}
	w, release := closeWithContext(w, r)
	defer release()
	remotecommand.ServeExec(w, r, &executor{streams: s.streams, id: id}, r.PathValue("pod"), r.PathValue("uid"),
		r.PathValue("container"), cmd, opts, s.idleTimeout, s.creationTimeout, remoteCommandProtocols)
}

// attach serves /attach/{namespace}/{pod}[/{uid}]/{container}.
func (s *server) attach(w http.ResponseWriter, r *http.Request) {
	opts, ok := s.remoteCommandOptions(w, r)
	if !ok {
		return
	}
	id, ok := s.container(w, r)
	if !ok {
		return
	}
	w, release := closeWithContext(w, r)
	defer release()
	remotecommand.ServeAttach(w, r, &attacher{streams: s.streams, id: id}, r.PathValue("pod"), r.PathValue("uid"),
		r.PathValue("container"), opts, s.idleTimeout, s.creationTimeout, remoteCommandProtocols)
}

// portForward serves /portForward/{namespace}/{pod}[/{uid}].
func (s *server) portForward(w http.ResponseWriter, r *http.Request) {
	ns, pod := r.PathValue("namespace"), r.PathValue("pod")
	tunnel := wsstream.IsWebSocketRequestWithTunnelingProtocol(r)
	opts := &portforward.V4Options{}
	if wsstream.IsWebSocketRequest(r) && !tunnel {
		if !offers(r, webSocketPortForwardProtocols) {
			httpError(w, http.StatusBadRequest, "unable to upgrade: none of the WebSocket subprotocols %q is supported, use SPDY", webSocketProtocols(r))
			return
		}
		var err error
		if opts, err = portforward.NewV4Options(r); err != nil {
			httpError(w, http.StatusBadRequest, "%v", err)
			return
		}
	}

	id, uid, err := s.pods.Sandbox(r.Context(), ns, pod)
	switch {
	case errors.Is(err, ErrNotFound):
		httpError(w, http.StatusNotFound, "pod %q does not exist", pod)
		return
	case err != nil:
		httpError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	if want := r.PathValue("uid"); want != "" && want != string(uid) {
		httpError(w, http.StatusNotFound, "pod not found")
		return
	}

	fw := &portForwarder{streams: s.streams, id: id}
	w, release := closeWithContext(w, r)
	defer release()
	if tunnel {
		var ok bool
		if w, r, ok = tunnelSPDY(w, r); !ok {
			return
		}
	}
	portforward.ServePortForward(w, r, fw, pod, string(uid), opts, s.idleTimeout, s.creationTimeout, portforward.SupportedProtocols)
}

// remoteCommandOptions reads which streams an exec or attach asks for. It
// takes kubectl's parameters (stdin, stdout, stderr, tty: true or 1), which
// skiff's API server passes through, and the kubelet's (input, output,
// error, tty: 1), which kube-apiserver sends. It also refuses a WebSocket
// request the library could not upgrade.
func (s *server) remoteCommandOptions(w http.ResponseWriter, r *http.Request) (*remotecommand.Options, bool) {
	if wsstream.IsWebSocketRequest(r) && !offers(r, webSocketRemoteCommandProtocols) {
		httpError(w, http.StatusBadRequest, "unable to upgrade: none of the WebSocket subprotocols %q is supported, use SPDY", webSocketProtocols(r))
		return nil, false
	}
	q := r.URL.Query()
	flag := func(names ...string) bool {
		for _, n := range names {
			if v, err := strconv.ParseBool(q.Get(n)); err == nil && v {
				return true
			}
		}
		return false
	}
	o := &remotecommand.Options{
		Stdin:  flag("stdin", remotecommand.ExecStdinParam),
		Stdout: flag("stdout", remotecommand.ExecStdoutParam),
		Stderr: flag("stderr", remotecommand.ExecStderrParam),
		TTY:    flag(remotecommand.ExecTTYParam),
	}
	if o.TTY {
		o.Stderr = false // a terminal merges stderr into stdout
	}
	if !o.Stdin && !o.Stdout && !o.Stderr {
		httpError(w, http.StatusBadRequest, "you must specify at least 1 of stdin, stdout, stderr")
		return nil, false
	}
	return o, true
}

// container resolves the URL's container to its CRI id, writing the
// kubelet's error if it cannot. A UID in the URL must be the pod's.
func (s *server) container(w http.ResponseWriter, r *http.Request) (string, bool) {
	ns, pod, container := r.PathValue("namespace"), r.PathValue("pod"), r.PathValue("container")
	if want := r.PathValue("uid"); want != "" {
		_, uid, err := s.pods.Sandbox(r.Context(), ns, pod)
		if errors.Is(err, ErrNotFound) || (err == nil && string(uid) != want) {
			httpError(w, http.StatusNotFound, "pod not found")
			return "", false
		}
		if err != nil {
			httpError(w, http.StatusInternalServerError, "%v", err)
			return "", false
		}
	}
	id, _, err := s.pods.Container(r.Context(), ns, pod, container, false)
	switch {
	case errors.Is(err, ErrNotFound):
		httpError(w, http.StatusNotFound, "container %q not found in pod %q", container, pod)
		return "", false
	case err != nil:
		httpError(w, http.StatusInternalServerError, "%v", err)
		return "", false
	}
	return id, true
}

// webSocketProtocols lists the subprotocols a WebSocket request offers.
func webSocketProtocols(r *http.Request) []string {
	var out []string
	for _, v := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// offers reports whether r offers one of the protocols, or none when ""
// is among them.
func offers(r *http.Request, protocols []string) bool {
	offered := webSocketProtocols(r)
	if len(offered) == 0 {
		offered = []string{""}
	}
	for _, o := range offered {
		for _, p := range protocols {
			if o == p {
				return true
			}
		}
	}
	return false
}

// executor runs the library's exec sessions in one container.
type executor struct {
	streams Streams
	id      string
}

var _ remotecommand.Executor = (*executor)(nil)

func (e *executor) ExecInContainer(ctx context.Context, _, _, _ string, cmd []string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize, _ time.Duration) error {
	err := e.streams.Exec(ctx, e.id, cmd, in, out, errw, tty, resize)
	// ServeExec recognises an exit status only by the error's own type.
	var exit utilexec.ExitError
	if errors.As(err, &exit) {
		return exit
	}
	if err != nil {
		return fmt.Errorf("exec in container %s: %w", e.id, err)
	}
	return nil
}

// attacher runs the library's attach sessions to one container.
type attacher struct {
	streams Streams
	id      string
}

var _ remotecommand.Attacher = (*attacher)(nil)

func (a *attacher) AttachContainer(ctx context.Context, _, _, _ string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	if err := a.streams.Attach(ctx, a.id, in, out, errw, tty, resize); err != nil {
		return fmt.Errorf("attach to container %s: %w", a.id, err)
	}
	return nil
}

// portForwarder forwards the library's streams into one pod sandbox.
type portForwarder struct {
	streams Streams
	id      string
}

var _ portforward.PortForwarder = (*portForwarder)(nil)

func (p *portForwarder) PortForward(ctx context.Context, _, _ string, port int32, stream io.ReadWriteCloser) error {
	if err := p.streams.PortForward(ctx, p.id, port, stream); err != nil {
		return fmt.Errorf("forward port %d in sandbox %s: %w", port, p.id, err)
	}
	return nil
}

// hijackCloser closes the connection hijacked from it when the request's
// context ends. net/http stops watching a connection once it is hijacked,
// and the library's port-forward never looks at the context, so without
// this a session would outlive Serve until its idle timeout.
type hijackCloser struct {
	http.ResponseWriter
	ctx  context.Context
	stop func() bool
}

// closeWithContext wraps w for a streaming handler; release undoes it once
// the session is over.
func closeWithContext(w http.ResponseWriter, r *http.Request) (http.ResponseWriter, func()) {
	h := &hijackCloser{ResponseWriter: w, ctx: r.Context()}
	return h, func() {
		if h.stop != nil {
			h.stop()
		}
	}
}

func (h *hijackCloser) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, rw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err == nil {
		h.stop = context.AfterFunc(h.ctx, func() { conn.Close() })
	}
	return conn, rw, err
}

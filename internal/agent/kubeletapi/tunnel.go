package kubeletapi

// kubectl port-forward first asks for SPDY carried in binary WebSocket
// messages (subprotocol SPDY/3.1+portforward.k8s.io). The streaming library
// only serves SPDY over a hijacked HTTP/1.1 connection, so the request is
// presented to it as a SPDY upgrade, and its 101 and hijack are answered with
// a WebSocket upgrade whose connection carries the SPDY bytes. This is what
// kube-apiserver's stream tunnel does in front of a kubelet.

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"strings"

	gwebsocket "github.com/gorilla/websocket"
	clientportforward "k8s.io/client-go/tools/portforward"
	"k8s.io/cri-streaming/pkg/streaming/portforward"
	"k8s.io/streaming/pkg/httpstream"
	"k8s.io/streaming/pkg/httpstream/spdy"
)

// tunnelSPDY returns the writer and request to give the library's SPDY
// port-forward for a SPDY-over-WebSocket request. If r offers no
// tunnelled protocol the library knows, it answers r and returns false.
func tunnelSPDY(w http.ResponseWriter, r *http.Request) (http.ResponseWriter, *http.Request, bool) {
	var subprotocols, inner []string
	for _, p := range webSocketProtocols(r) {
		name, ok := strings.CutPrefix(p, portforward.WebsocketsSPDYTunnelingPrefix)
		if !ok {
			continue
		}
		for _, known := range portforward.SupportedProtocols {
			if name == known {
				subprotocols = append(subprotocols, p)
				inner = append(inner, name)
			}
		}
	}
	if len(inner) == 0 {
		httpError(w, http.StatusBadRequest, "unable to upgrade: none of the WebSocket subprotocols %q is supported, use SPDY", webSocketProtocols(r))
		return nil, nil, false
	}

	spdyReq := r.Clone(r.Context())
	for k := range spdyReq.Header {
		if strings.HasPrefix(k, "Sec-Websocket-") {
			spdyReq.Header.Del(k)
		}
	}
	spdyReq.Header.Set(httpstream.HeaderConnection, httpstream.HeaderUpgrade)
	spdyReq.Header.Set(httpstream.HeaderUpgrade, spdy.HeaderSpdy31)
	spdyReq.Header.Set(httpstream.HeaderProtocolVersion, strings.Join(inner, ", "))
	return &tunnelWriter{w: w, r: r, subprotocols: subprotocols, header: http.Header{}}, spdyReq, true
}

// tunnelWriter stands for the client connection towards the library's
// SPDY server: its 101 becomes a WebSocket upgrade, and its hijack gets
// the WebSocket connection as a net.Conn.
type tunnelWriter struct {
	w            http.ResponseWriter // the real client connection
	r            *http.Request       // the client's WebSocket request
	subprotocols []string
	header       http.Header
	conn         net.Conn
	err          error
}

var _ http.Hijacker = (*tunnelWriter)(nil)

func (t *tunnelWriter) Header() http.Header { return t.header }

func (t *tunnelWriter) Write(b []byte) (int, error) { return t.w.Write(b) }

// WriteHeader upgrades the client to WebSocket on a 101, and otherwise
// passes the library's refusal on.
func (t *tunnelWriter) WriteHeader(code int) {
	if code != http.StatusSwitchingProtocols {
		for k, v := range t.header {
			t.w.Header()[k] = v
		}
		t.w.WriteHeader(code)
		return
	}
	up := gwebsocket.Upgrader{
		Subprotocols: t.subprotocols,
		// Who may connect is settled by the client certificate; browsers'
		// Origin checks do not apply.
		CheckOrigin:     func(*http.Request) bool { return true },
		ReadBufferSize:  32 << 10,
		WriteBufferSize: 32 << 10,
	}
	ws, err := up.Upgrade(t.w, t.r, nil) // on failure, it has replied
	if err != nil {
		t.err = err
		return
	}
	t.conn = clientportforward.NewTunnelingConnection("port-forward tunnel", ws)
}

func (t *tunnelWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if t.conn == nil {
		if t.err != nil {
			return nil, nil, t.err
		}
		return nil, nil, errors.New("hijack before the WebSocket upgrade")
	}
	return t.conn, bufio.NewReadWriter(bufio.NewReader(t.conn), bufio.NewWriter(t.conn)), nil
}

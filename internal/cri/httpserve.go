package cri

import (
	"net"
	"net/http"
)

func httpServe(l net.Listener, h http.Handler) {
	(&http.Server{Handler: h}).Serve(l)
}

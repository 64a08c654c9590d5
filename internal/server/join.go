package server

import (
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"

	"github.com/skiff-sh/skiff/internal/apiserver"
	"github.com/skiff-sh/skiff/internal/node"
	"github.com/skiff-sh/skiff/internal/pki"
)

var validNodeName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`)

// joinHandlers serve the server's CA to anyone (agents check it against
// their token) and node credentials to holders of the join token: a
// client certificate for system:node:<name> and the kubelet API's serving
// certificate, made and kept under server/tls/nodes/<name>.
func joinHandlers(cfg Config, creds *credentials) (caHandler, join http.Handler) {
	caHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-pem-file")
		w.Write(creds.serverCA.CertPEM)
	})
	join = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, ok := apiserver.UserFrom(r.Context())
		if !ok || !slices.Contains(u.Groups, "system:bootstrappers") {
			http.Error(w, "joining needs the server's token", http.StatusUnauthorized)
			return
		}
		if r.Method != http.MethodPost {
			http.Error(w, "POST a join request", http.StatusMethodNotAllowed)
			return
		}
		var req node.JoinRequest
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&req); err != nil || !validNodeName.MatchString(req.NodeName) {
			http.Error(w, "a join request needs a valid nodeName", http.StatusBadRequest)
			return
		}
		dir := filepath.Join(tlsDir(cfg.DataDir), "nodes", req.NodeName)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		client, err := creds.clientCA.EnsureClient(dir, "client", "system:node:"+req.NodeName, []string{"system:nodes"})
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		sans := pki.ServingSANs{DNSNames: append([]string{req.NodeName, "localhost"}, req.Hostnames...), IPs: []net.IP{net.ParseIP("127.0.0.1")}}
		for _, a := range req.Addresses {
			if ip := net.ParseIP(a); ip != nil {
				sans.IPs = append(sans.IPs, ip)
			}
		}
		serving, err := creds.serverCA.EnsureServing(dir, "serving", sans)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		read := func(path string) string { data, _ := os.ReadFile(path); return string(data) }
		resp := node.JoinResponse{
			ServerCA: string(creds.serverCA.CertPEM), ClientCA: string(creds.clientCA.CertPEM),
			ClientCert: read(client.CertFile), ClientKey: read(client.KeyFile),
			ServingCert: read(serving.CertFile), ServingKey: read(serving.KeyFile),
			ClusterCIDR: cfg.ClusterCIDR.String(), ServiceCIDR: cfg.ServiceCIDR.String(),
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(resp)
	})
	return caHandler, join
}

package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// JoinRequest is what an agent sends to /v1-skiff/join with the server's
// token.
type JoinRequest struct {
	NodeName  string   `json:"nodeName"`
	Addresses []string `json:"addresses,omitempty"`
	Hostnames []string `json:"hostnames,omitempty"`
}

// JoinResponse is the agent's own credential and what it needs to know
// of the cluster.
type JoinResponse struct {
	ServerCA    string `json:"serverCA"`
	ClientCA    string `json:"clientCA"`
	ClientCert  string `json:"clientCert"` // system:node:<name>, group system:nodes
	ClientKey   string `json:"clientKey"`
	ServingCert string `json:"servingCert"` // the kubelet API's
	ServingKey  string `json:"servingKey"`
	ClusterCIDR string `json:"clusterCIDR"`
	ServiceCIDR string `json:"serviceCIDR"`
}

// Paths the server answers for joining agents.
const (
	CACertsPath = "/cacerts"
	JoinPath    = "/v1-skiff/join"
)

// FullToken is the token form that also pins the server's CA, as k3s's:
// "K10<sha256 of the CA's PEM>::server:<secret>".
func FullToken(caPEM []byte, secret string) string {
	sum := sha256.Sum256(caPEM)
	return "K10" + hex.EncodeToString(sum[:]) + "::server:" + secret
}

// parseToken splits a full token; a plain secret has no CA hash.
func parseToken(token string) (caHash, secret string) {
	if strings.HasPrefix(token, "K10") {
		if h, rest, ok := strings.Cut(token[3:], "::"); ok {
			_, s, found := strings.Cut(rest, ":")
			if !found {
				s = rest
			}
			return h, s
		}
	}
	return "", token
}

// Join fetches the server's CA (checked against the token's hash when it
// has one) and asks for the node's credential.
func Join(ctx context.Context, server, token string, req JoinRequest, log *slog.Logger) (*JoinResponse, error) {
	caHash, secret := parseToken(token)
	insecure := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	caPEM, err := get(ctx, insecure, strings.TrimSuffix(server, "/")+CACertsPath)
	if err != nil {
		return nil, fmt.Errorf("fetch the server's CA: %w", err)
	}
	sum := sha256.Sum256(caPEM)
	switch {
	case caHash == "":
		log.Warn("the token pins no CA: trusting the server's CA on first use; use the full token from <data-dir>/server/node-token")
	case !strings.EqualFold(caHash, hex.EncodeToString(sum[:])):
		return nil, errors.New("the server's CA does not match the token's hash: wrong server, or a token of another cluster")
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("the server sent no usable CA certificate")
	}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	body, _ := json.Marshal(req)
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(server, "/")+JoinPath, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	r.Header.Set("Authorization", "Bearer "+secret)
	r.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(r)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("join refused (%s): %s", resp.Status, strings.TrimSpace(string(data)))
	}
	var out JoinResponse
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("join: %w", err)
	}
	return &out, nil
}

func get(ctx context.Context, c *http.Client, url string) ([]byte, error) {
	r, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(r)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	return io.ReadAll(resp.Body)
}

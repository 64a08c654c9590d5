package image

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"sigs.k8s.io/yaml"
)

// Registries is k3s's registries.yaml: mirrors per registry (endpoints
// tried in order before the registry itself, with repository rewrites) and
// per-host configs (credentials and TLS).
type Registries struct {
	Mirrors map[string]Mirror         `json:"mirrors"`
	Configs map[string]RegistryConfig `json:"configs"`
}

// Mirror lists a registry's mirrors.
type Mirror struct {
	Endpoints []string          `json:"endpoint"`
	Rewrites  map[string]string `json:"rewrite"`
}

// RegistryConfig is one host's credentials and TLS settings.
type RegistryConfig struct {
	Auth *RegistryAuth `json:"auth"`
	TLS  *RegistryTLS  `json:"tls"`
}

// RegistryAuth holds credentials, as in registries.yaml.
type RegistryAuth struct {
	Username      string `json:"username"`
	Password      string `json:"password"`
	Auth          string `json:"auth"`
	IdentityToken string `json:"identitytoken"`
}

// RegistryTLS holds TLS settings, as in registries.yaml.
type RegistryTLS struct {
	CertFile           string `json:"cert_file"`
	KeyFile            string `json:"key_file"`
	CAFile             string `json:"ca_file"`
	InsecureSkipVerify bool   `json:"insecure_skip_verify"`
}

// LoadRegistries reads a registries.yaml; a missing file means none.
func LoadRegistries(path string) (*Registries, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return &Registries{}, nil
	}
	if err != nil {
		return nil, err
	}
	var r Registries
	if err := yaml.UnmarshalStrict(data, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for reg, m := range r.Mirrors {
		for pattern := range m.Rewrites {
			if _, err := regexp.Compile(pattern); err != nil {
				return nil, fmt.Errorf("%s: mirror %s: rewrite %q: %w", path, reg, pattern, err)
			}
		}
	}
	return &r, nil
}

// candidate is one place to pull a reference from.
type candidate struct {
	ref  name.Reference
	opts []remote.Option
}

// candidates lists where to pull r from: each mirror endpoint, then the
// registry itself (the default endpoint, as containerd does).
func (s *Store) candidates(r name.Reference, base []remote.Option) ([]candidate, error) {
	var out []candidate
	if s.registries != nil {
		reg := registryKey(r.Context().RegistryStr())
		m, ok := s.registries.Mirrors[reg]
		if !ok {
			m, ok = s.registries.Mirrors["*"]
		}
		if ok {
			for _, ep := range m.Endpoints {
				c, err := s.mirrorCandidate(r, ep, m.Rewrites, base)
				if err != nil {
					return nil, err
				}
				out = append(out, c)
			}
		}
	}
	opts, err := s.hostOptions(r.Context().RegistryStr(), false, base)
	if err != nil {
		return nil, err
	}
	return append(out, candidate{ref: r, opts: opts}), nil
}

// registryKey names Docker Hub as registries.yaml does.
func registryKey(reg string) string {
	if reg == name.DefaultRegistry {
		return "docker.io"
	}
	return reg
}

func (s *Store) mirrorCandidate(r name.Reference, endpoint string, rewrites map[string]string, base []remote.Option) (candidate, error) {
	if !strings.Contains(endpoint, "://") {
		endpoint = "https://" + endpoint
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return candidate{}, fmt.Errorf("mirror endpoint %q: %w", endpoint, err)
	}
	repo := r.Context().RepositoryStr()
	for pattern, repl := range rewrites {
		re := regexp.MustCompile(pattern)
		if re.MatchString(repo) {
			repo = re.ReplaceAllString(repo, repl)
			break
		}
	}
	var nopts []name.Option
	if u.Scheme == "http" {
		nopts = append(nopts, name.Insecure)
	}
	repoRef, err := name.NewRepository(u.Host+"/"+repo, nopts...)
	if err != nil {
		return candidate{}, fmt.Errorf("mirror %s: %w", endpoint, err)
	}
	var ref name.Reference
	if d, ok := r.(name.Digest); ok {
		ref = repoRef.Digest(d.DigestStr())
	} else {
		ref = repoRef.Tag(r.Identifier())
	}
	opts, err := s.hostOptions(u.Host, u.Scheme == "http", base)
	return candidate{ref: ref, opts: opts}, err
}

// hostOptions adds a host's credentials and TLS settings to base.
func (s *Store) hostOptions(host string, plainHTTP bool, base []remote.Option) ([]remote.Option, error) {
	opts := append([]remote.Option{}, base...)
	kc := s.keychain
	var cfg RegistryConfig
	if s.registries != nil {
		cfg = s.registries.Configs[registryKey(host)]
	}
	if a := cfg.Auth; a != nil {
		kc = staticKeychain{host: host, cfg: authn.AuthConfig{Username: a.Username, Password: a.Password, Auth: a.Auth, IdentityToken: a.IdentityToken}, fallback: kc}
	}
	opts = append(opts, remote.WithAuthFromKeychain(kc))
	transport := s.transport
	if t := cfg.TLS; t != nil && !plainHTTP {
		tc := &tls.Config{InsecureSkipVerify: t.InsecureSkipVerify}
		if t.CAFile != "" {
			pem, err := os.ReadFile(t.CAFile)
			if err != nil {
				return nil, fmt.Errorf("registry %s ca_file: %w", host, err)
			}
			// Added to the system's roots, as containerd does: blobs are
			// often redirected to a public CDN.
			pool, err := x509.SystemCertPool()
			if err != nil || pool == nil {
				pool = x509.NewCertPool()
			}
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("registry %s ca_file %s: no PEM certificate in it", host, t.CAFile)
			}
			tc.RootCAs = pool
		}
		if t.CertFile != "" {
			cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("registry %s client certificate: %w", host, err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		base, ok := s.transport.(*http.Transport)
		if !ok {
			base = remote.DefaultTransport.(*http.Transport)
		}
		tr := base.Clone()
		tr.TLSClientConfig = tc
		transport = tr
	}
	opts = append(opts, remote.WithTransport(noPlainHTTP{next: transport, allowed: plainHTTP}))
	return opts, nil
}

// noPlainHTTP refuses plain-HTTP requests except to loopback registries
// and endpoints configured as http://. The registry client otherwise falls
// back to HTTP for private addresses whenever HTTPS fails, a bad
// certificate included, which would let a man in the middle serve images
// and collect credentials.
type noPlainHTTP struct {
	next    http.RoundTripper
	allowed bool
}

func (t noPlainHTTP) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme == "http" && !t.allowed && !isLoopback(r.URL.Hostname()) {
		return nil, fmt.Errorf("refusing plain HTTP to %s: configure the endpoint as http:// in registries.yaml to allow it", r.URL.Host)
	}
	return t.next.RoundTrip(r)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// staticKeychain answers with configured credentials for one host.
type staticKeychain struct {
	host     string
	cfg      authn.AuthConfig
	fallback authn.Keychain
}

func (k staticKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	if r.RegistryStr() == k.host || registryKey(r.RegistryStr()) == registryKey(k.host) {
		return authn.FromConfig(k.cfg), nil
	}
	return k.fallback.Resolve(r)
}

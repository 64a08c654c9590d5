package image_test

import (
	"context"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/skiff-sh/skiff/internal/image"
)

func TestMirrorFromRegistriesYAMLIsUsedWithItsAuth(t *testing.T) {
	inner := registry.New()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "mirror-user" || p != "s3cret" {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		inner.ServeHTTP(w, r)
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	img := buildImage(t, "amd64", layer(t, entry{name: "from-mirror", body: "yes"}))
	ref, _ := name.ParseReference(host + "/mirrored/app:v1")
	if err := remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: "mirror-user", Password: "s3cret"})); err != nil {
		t.Fatal(err)
	}
	// The upstream is a closed loopback port: only the mirror can serve.
	upstream := "127.0.0.2:1"
	cfg := fmt.Sprintf(`mirrors:
  %q:
    endpoint:
      - "http://%s"
    rewrite:
      "^team/(.*)": "mirrored/$1"
configs:
  %q:
    auth:
      username: mirror-user
      password: s3cret
`, upstream, host, host)
	path := filepath.Join(t.TempDir(), "registries.yaml")
	os.WriteFile(path, []byte(cfg), 0o644)
	regs, err := image.LoadRegistries(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := image.New(t.TempDir(), image.Options{Registries: regs, Platform: v1.Platform{OS: "linux", Architecture: "amd64"}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Pull(context.Background(), upstream+"/team/app:v1")
	if err != nil {
		t.Fatalf("pull through the mirror: %v", err)
	}
	want, _ := img.Digest()
	if got.Digest != want || got.Ref != upstream+"/team/app:v1" {
		t.Errorf("pulled %+v", got)
	}

	// Without the credentials the mirror refuses and the pull fails.
	noAuth := strings.Replace(cfg, "configs:", "unused:", 1)
	os.WriteFile(path, []byte(strings.SplitN(noAuth, "unused:", 2)[0]), 0o644)
	regs, err = image.LoadRegistries(path)
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := image.New(t.TempDir(), image.Options{Registries: regs, Platform: v1.Platform{OS: "linux", Architecture: "amd64"}})
	if _, err := s2.Pull(context.Background(), upstream+"/team/app:v1"); err == nil {
		t.Error("pull without the mirror's credentials succeeded")
	}
}

func TestRegistriesYAMLWithUnknownFieldsIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "registries.yaml")
	os.WriteFile(path, []byte("mirrorz: {}\n"), 0o644)
	if _, err := image.LoadRegistries(path); err == nil {
		t.Error("a misspelt key was accepted")
	}
	if r, err := image.LoadRegistries(filepath.Join(t.TempDir(), "missing.yaml")); err != nil || r == nil {
		t.Errorf("a missing file: %v", err)
	}
}

func TestRegistryOverTLSNeedsItsCAFromRegistriesYAML(t *testing.T) {
	srv := httptest.NewTLSServer(registry.New())
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "https://")
	img := buildImage(t, "amd64", layer(t, entry{name: "tls", body: "yes"}))
	ref, _ := name.ParseReference(host + "/secure/app:v1")
	if err := remote.Write(ref, img, remote.WithTransport(srv.Client().Transport)); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	os.WriteFile(ca, pemCert(srv), 0o644)
	plat := v1.Platform{OS: "linux", Architecture: "amd64"}
	// Without the CA the registry's certificate is not trusted.
	untrusted, _ := image.New(t.TempDir(), image.Options{Platform: plat, Registries: &image.Registries{}})
	if _, err := untrusted.Pull(context.Background(), host+"/secure/app:v1"); err == nil {
		t.Error("pull from a TLS registry with an unknown CA succeeded")
	}
	regs := &image.Registries{Configs: map[string]image.RegistryConfig{host: {TLS: &image.RegistryTLS{CAFile: ca}}}}
	trusted, _ := image.New(t.TempDir(), image.Options{Platform: plat, Registries: regs})
	if _, err := trusted.Pull(context.Background(), host+"/secure/app:v1"); err != nil {
		t.Fatalf("pull with the registry's CA: %v", err)
	}
}

func pemCert(srv *httptest.Server) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
}

func TestDockerConfigCredentialsAreUsed(t *testing.T) {
	inner := registry.New()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "docker-user" || p != "docker-pass" {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		inner.ServeHTTP(w, r)
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	ref, _ := name.ParseReference(host + "/private/app:v1")
	img := buildImage(t, "amd64", layer(t, entry{name: "p", body: "private"}))
	if err := remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: "docker-user", Password: "docker-pass"})); err != nil {
		t.Fatal(err)
	}
	cfgDir := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte("docker-user:docker-pass"))
	os.WriteFile(filepath.Join(cfgDir, "config.json"), []byte(fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, host, auth)), 0o600)
	t.Setenv("DOCKER_CONFIG", cfgDir)
	s, _ := image.New(t.TempDir(), image.Options{Platform: v1.Platform{OS: "linux", Architecture: "amd64"}})
	if _, err := s.Pull(context.Background(), host+"/private/app:v1"); err != nil {
		t.Fatalf("pull with ~/.docker/config.json credentials: %v", err)
	}
}

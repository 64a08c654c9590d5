package e2e

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func insecureClient() *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
}

func TestUnauthenticatedRequestsGet401ExceptHealthAndVersion(t *testing.T) {
	s := startServer(t)
	c := insecureClient()
	for path, want := range map[string]int{
		"/healthz": 200, "/livez": 200, "/readyz": 200, "/version": 200,
		"/api": 401, "/apis": 401, "/api/v1/namespaces": 401, "/openapi/v3": 401, "/metrics": 401,
	} {
		resp, err := c.Get(s.url() + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s = %d, want %d (%s)", path, resp.StatusCode, want, body)
		}
		if want == 401 {
			var st metav1.Status
			if err := json.Unmarshal(body, &st); err != nil || st.Reason != metav1.StatusReasonUnauthorized {
				t.Errorf("GET %s: body is not an Unauthorized Status: %s", path, body)
			}
		}
	}
}

func TestServerRestartReusesCAAndCredentials(t *testing.T) {
	s := startServer(t)
	ca1, err := os.ReadFile(filepath.Join(s.dataDir, "server", "tls", "server-ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	kc1, _ := os.ReadFile(s.kubeconfig())
	s.mustKubectl("create", "namespace", "before-restart")
	s.stop()
	s.restart()
	ca2, _ := os.ReadFile(filepath.Join(s.dataDir, "server", "tls", "server-ca.crt"))
	kc2, _ := os.ReadFile(s.kubeconfig())
	if string(ca1) != string(ca2) {
		t.Error("the CA changed across a restart")
	}
	if string(kc1) != string(kc2) {
		t.Error("the admin kubeconfig changed across a restart")
	}
	// The old kubeconfig (same content) still works and the data is there.
	out := s.mustKubectl("get", "namespace", "before-restart", "-o", "name")
	if out != "namespace/before-restart\n" {
		t.Errorf("after restart: %q", out)
	}
}

func TestVersionEndpointParsesForKubectl(t *testing.T) {
	s := startServer(t)
	out := s.mustKubectl("version", "-o", "json")
	var v struct {
		Client struct{ GitVersion string } `json:"clientVersion"`
		Server struct{ GitVersion string } `json:"serverVersion"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if v.Client.GitVersion != "v1.37.2" || v.Server.GitVersion == "" {
		t.Errorf("versions: %+v", v)
	}
}

func TestSkiffCarriesItsRuntime(t *testing.T) {
	// A copy of skiff alone in a directory still runs `skiff runtime`:
	// skiff-runtime is embedded and written out on first use. What this
	// test writes out under /run/skiff/bin goes again afterwards.
	before, _ := os.ReadDir("/run/skiff/bin")
	t.Cleanup(func() {
		had := map[string]bool{}
		for _, e := range before {
			had[e.Name()] = true
		}
		after, _ := os.ReadDir("/run/skiff/bin")
		for _, e := range after {
			if !had[e.Name()] {
				os.RemoveAll(filepath.Join("/run/skiff/bin", e.Name()))
			}
		}
	})
	dir := t.TempDir()
	data, err := os.ReadFile(skiffBin)
	if err != nil {
		t.Fatal(err)
	}
	lone := filepath.Join(dir, "skiff")
	if err := os.WriteFile(lone, data, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(lone, "runtime", "--root", filepath.Join(dir, "state"), "list", "--format", "json").CombinedOutput()
	if err != nil || string(out) != "[]\n" {
		t.Fatalf("skiff runtime list: %v: %q", err, out)
	}
}

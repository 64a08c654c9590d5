package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
)

// rawAPI sends hand-written requests to the server over HTTPS with the admin
// client certificate, so that tests can send what no client library would.
type rawAPI struct {
	t    *testing.T
	base string
	c    *http.Client
}

// with returns a copy that reports to t, for use in subtests.
func (a *rawAPI) with(t *testing.T) *rawAPI {
	c := *a
	c.t = t
	return &c
}

func newRawAPI(s *server) *rawAPI {
	s.t.Helper()
	c, err := rest.HTTPClientFor(s.restConfig())
	if err != nil {
		s.t.Fatal(err)
	}
	c.Timeout = 30 * time.Second
	return &rawAPI{t: s.t, base: s.url(), c: c}
}

// rawReply is one response, body read.
type rawReply struct {
	code   int
	header http.Header
	body   []byte
}

func (r rawReply) String() string {
	b := string(r.body)
	if len(b) > 2000 {
		b = b[:2000] + "..."
	}
	return fmt.Sprintf("%d %s", r.code, b)
}

// do sends one request; header is Content-Type unless it holds a colon
// ("Accept: x").
func (a *rawAPI) do(method, path string, body []byte, headers ...string) rawReply {
	a.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, a.base+path, rd)
	if err != nil {
		a.t.Fatal(err)
	}
	for _, h := range headers {
		if k, v, ok := strings.Cut(h, ": "); ok {
			req.Header.Set(k, v)
		} else {
			req.Header.Set("Content-Type", h)
		}
	}
	resp, err := a.c.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return rawReply{code: resp.StatusCode, header: resp.Header, body: data}
}

// status decodes a Status reply and checks the envelope every error reply
// must have: JSON, kind Status, status Failure and a code equal to the HTTP
// one.
func (a *rawAPI) status(what string, r rawReply, code int, reason metav1.StatusReason) metav1.Status {
	a.t.Helper()
	var st metav1.Status
	if r.code != code {
		a.t.Errorf("%s: code %d, want %d: %s", what, r.code, code, r)
		return st
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		a.t.Errorf("%s: Content-Type %q, want application/json", what, ct)
	}
	if err := json.Unmarshal(r.body, &st); err != nil {
		a.t.Errorf("%s: body is not a Status: %v: %s", what, err, r)
		return st
	}
	if st.Kind != "Status" || st.APIVersion != "v1" || st.Status != metav1.StatusFailure || st.Code != int32(code) || st.Reason != reason || st.Message == "" {
		a.t.Errorf("%s: Status %+v, want kind Status, apiVersion v1, Failure, code %d, reason %s and a message", what, st, code, reason)
	}
	return st
}

// causes returns the field paths a Status names in details.causes.
func causes(st metav1.Status) []string {
	if st.Details == nil {
		return nil
	}
	var out []string
	for _, c := range st.Details.Causes {
		out = append(out, c.Field)
	}
	return out
}

func wantCauses(t *testing.T, what string, st metav1.Status, fields ...string) {
	t.Helper()
	got := causes(st)
	for _, f := range fields {
		found := false
		for _, g := range got {
			found = found || g == f
		}
		if !found {
			t.Errorf("%s: causes %q lack %q (message %q)", what, got, f, st.Message)
		}
	}
}

func wantMessage(t *testing.T, what string, st metav1.Status, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(st.Message, p) {
			t.Errorf("%s: message %q lacks %q", what, st.Message, p)
		}
	}
}

// mustCreate POSTs a JSON object and fails unless it is created.
func (a *rawAPI) mustCreate(path, body string) map[string]any {
	a.t.Helper()
	r := a.do("POST", path, []byte(body), "application/json")
	if r.code != http.StatusCreated {
		a.t.Fatalf("POST %s: %s", path, r)
	}
	var obj map[string]any
	if err := json.Unmarshal(r.body, &obj); err != nil {
		a.t.Fatal(err)
	}
	return obj
}

// stillServes checks that the server answers an ordinary request.
func (a *rawAPI) stillServes() {
	a.t.Helper()
	if r := a.do("GET", "/api/v1/namespaces/default", nil); r.code != http.StatusOK {
		a.t.Fatalf("server no longer serves: GET namespace default: %s", r)
	}
}

const (
	cmPath     = "/api/v1/namespaces/default/configmaps"
	deployPath = "/apis/apps/v1/namespaces/default/deployments"
	podPath    = "/api/v1/namespaces/default/pods"
)

func deploymentJSON(name, extraSpec string) string {
	return `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"` + name + `"},"spec":{` + extraSpec +
		`"selector":{"matchLabels":{"app":"` + name + `"}},"template":{"metadata":{"labels":{"app":"` + name + `"}},` +
		`"spec":{"containers":[{"name":"c","image":"busybox"}]}}}}`
}

func TestBadRequestBodiesGetStatusErrorsAndServerKeepsServing(t *testing.T) {
	s := startServer(t)
	a := newRawAPI(s)
	t.Cleanup(func() {
		// The subtests make configmaps, deployments and pods in default,
		// which holds none of these on a fresh server but kube-root-ca.crt,
		// and the namespace bad-terminating, which its subtest removes.
		a.do("DELETE", cmPath+"?fieldSelector=metadata.name!%3Dkube-root-ca.crt", nil)
		a.do("DELETE", deployPath, nil)
		a.do("DELETE", podPath+"?gracePeriodSeconds=0", nil)
	})

	t.Run("MalformedJSON", func(t *testing.T) {
		a := a.with(t)
		r := a.do("POST", cmPath, []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":`), "application/json")
		a.status("malformed JSON", r, 400, metav1.StatusReasonBadRequest)
		r = a.do("POST", cmPath, []byte(`[1,2,3]`), "application/json")
		a.status("JSON array", r, 400, metav1.StatusReasonBadRequest)
		r = a.do("POST", cmPath, []byte(``), "application/json")
		a.status("empty body", r, 400, metav1.StatusReasonBadRequest)
	})

	t.Run("MalformedYAML", func(t *testing.T) {
		a := a.with(t)
		r := a.do("POST", cmPath, []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [unclosed\n  labels: {a: b\n"), "application/yaml")
		a.status("malformed YAML", r, 400, metav1.StatusReasonBadRequest)
		r = a.do("POST", cmPath, []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-yaml\ndata:\n  a: b\n"), "application/yaml")
		if r.code != http.StatusCreated {
			t.Errorf("valid YAML body: %s", r)
		}
	})

	t.Run("KindDoesNotMatchPath", func(t *testing.T) {
		a := a.with(t)
		body := `{"apiVersion":"v1","kind":"Service","metadata":{"name":"svc-as-cm"},"spec":{"ports":[{"port":80}]}}`
		st := a.status("Service to configmaps", a.do("POST", cmPath, []byte(body), "application/json"), 400, metav1.StatusReasonBadRequest)
		wantMessage(t, "Service to configmaps", st, "Service", "ConfigMap")
	})

	t.Run("WrongAPIVersion", func(t *testing.T) {
		a := a.with(t)
		for _, av := range []string{"v2", "apps/v1", "nonsense/v9"} {
			body := `{"apiVersion":"` + av + `","kind":"ConfigMap","metadata":{"name":"wrong-version"}}`
			a.status("apiVersion "+av, a.do("POST", cmPath, []byte(body), "application/json"), 400, metav1.StatusReasonBadRequest)
		}
		// A Deployment sent as apps/v1beta1 is refused too.
		body := strings.Replace(deploymentJSON("old-version", ""), `"apps/v1"`, `"apps/v1beta1"`, 1)
		a.status("apps/v1beta1 deployment", a.do("POST", deployPath, []byte(body), "application/json"), 400, metav1.StatusReasonBadRequest)
	})

	t.Run("MissingRequiredFields", func(t *testing.T) {
		a := a.with(t)
		body := `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"empty"},"spec":{}}`
		st := a.status("deployment without selector and template", a.do("POST", deployPath, []byte(body), "application/json"), 422, metav1.StatusReasonInvalid)
		wantCauses(t, "deployment without selector and template", st, "spec.selector", "spec.template.metadata.labels", "spec.template.spec.containers")
		if st.Details != nil && (st.Details.Name != "empty" || st.Details.Kind != "Deployment" || st.Details.Group != "apps") {
			t.Errorf("deployment details: %+v", st.Details)
		}

		body = `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"nocontainers"},"spec":{}}`
		st = a.status("pod without containers", a.do("POST", podPath, []byte(body), "application/json"), 422, metav1.StatusReasonInvalid)
		wantCauses(t, "pod without containers", st, "spec.containers")

		body = `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"noimage"},"spec":{"containers":[{"name":""}]}}`
		st = a.status("container without name and image", a.do("POST", podPath, []byte(body), "application/json"), 422, metav1.StatusReasonInvalid)
		wantCauses(t, "container without name and image", st, "spec.containers[0].name", "spec.containers[0].image")

		body = `{"apiVersion":"v1","kind":"ConfigMap","metadata":{}}`
		st = a.status("configmap without name", a.do("POST", cmPath, []byte(body), "application/json"), 422, metav1.StatusReasonInvalid)
		wantCauses(t, "configmap without name", st, "metadata.name")
	})

	t.Run("InvalidNames", func(t *testing.T) {
		a := a.with(t)
		for what, name := range map[string]string{
			"upper case": "Upper_Case",
			"too long":   strings.Repeat("a", 254),
			"dot dot":    "a..b",
		} {
			body := `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"` + name + `"}}`
			st := a.status(what, a.do("POST", cmPath, []byte(body), "application/json"), 422, metav1.StatusReasonInvalid)
			wantCauses(t, what, st, "metadata.name")
		}
		// Namespace names are DNS labels: 64 characters is one too many.
		body := `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"` + strings.Repeat("n", 64) + `"}}`
		st := a.status("namespace name over 63", a.do("POST", "/api/v1/namespaces", []byte(body), "application/json"), 422, metav1.StatusReasonInvalid)
		wantCauses(t, "namespace name over 63", st, "metadata.name")
	})

	t.Run("OversizedBody", func(t *testing.T) {
		a := a.with(t)
		big := `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"big"},"data":{"a":"` + strings.Repeat("x", 3<<20+10) + `"}}`
		a.status("body over 3 MiB", a.do("POST", cmPath, []byte(big), "application/json"), 413, metav1.StatusReasonRequestEntityTooLarge)
		a.stillServes()
		// The same over HTTP/1.1, where the server stops reading mid-body.
		tlsCfg, err := rest.TLSConfigFor(s.restConfig())
		if err != nil {
			t.Fatal(err)
		}
		h1 := &rawAPI{t: t, base: a.base, c: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsCfg}}}
		h1.status("body over 3 MiB over HTTP/1.1", h1.do("POST", cmPath, []byte(big), "application/json"), 413, metav1.StatusReasonRequestEntityTooLarge)
		h1.stillServes()
		if r := a.do("GET", cmPath+"/big", nil); r.code != http.StatusNotFound {
			t.Errorf("oversized configmap was stored: %s", r)
		}
	})

	t.Run("UnknownResourcePath", func(t *testing.T) {
		a := a.with(t)
		for _, p := range []string{
			"/api/v1/namespaces/default/foos",
			"/apis/nosuch.example.com/v1/things",
			"/apis/apps/v1/namespaces/default/deployments/x/y/z",
			"/api/v1/nodes/n1/bogus",
			"/api/v2/pods",
			"/nothing/here",
		} {
			a.status("GET "+p, a.do("GET", p, nil), 404, metav1.StatusReasonNotFound)
		}
		a.status("POST unknown", a.do("POST", "/api/v1/namespaces/default/foos", []byte(`{}`), "application/json"), 404, metav1.StatusReasonNotFound)
		// A cluster-scoped resource under a namespace does not exist.
		a.status("namespaced nodes", a.do("GET", "/api/v1/namespaces/default/nodes", nil), 404, metav1.StatusReasonNotFound)
	})

	t.Run("FieldValidation", func(t *testing.T) {
		a := a.with(t)
		body := func(name string) []byte { return []byte(deploymentJSON(name, `"foo":1,`)) }
		st := a.status("Strict unknown field", a.do("POST", deployPath+"?fieldValidation=Strict", body("fv-strict"), "application/json"), 400, metav1.StatusReasonBadRequest)
		wantMessage(t, "Strict unknown field", st, `unknown field "spec.foo"`)

		r := a.do("POST", deployPath+"?fieldValidation=Warn", body("fv-warn"), "application/json")
		if r.code != http.StatusCreated {
			t.Errorf("Warn: %s", r)
		} else if w := strings.Join(r.header.Values("Warning"), "\n"); !strings.Contains(w, `unknown field \"spec.foo\"`) && !strings.Contains(w, `unknown field "spec.foo"`) {
			t.Errorf("Warn: Warning headers %q lack the unknown field", w)
		}
		// Warn is the default.
		r = a.do("POST", deployPath, body("fv-default"), "application/json")
		if r.code != http.StatusCreated || len(r.header.Values("Warning")) == 0 {
			t.Errorf("default field validation: %s, warnings %q", r, r.header.Values("Warning"))
		}
		r = a.do("POST", deployPath+"?fieldValidation=Ignore", body("fv-ignore"), "application/json")
		if r.code != http.StatusCreated || len(r.header.Values("Warning")) != 0 {
			t.Errorf("Ignore: %s, warnings %q", r, r.header.Values("Warning"))
		}

		dup := []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"dup","name":"dup2"}}`)
		st = a.status("Strict duplicate field", a.do("POST", cmPath+"?fieldValidation=Strict", dup, "application/json"), 400, metav1.StatusReasonBadRequest)
		wantMessage(t, "Strict duplicate field", st, "duplicate field")
		dupYAML := []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: dupy\ndata:\n  a: one\n  a: two\n")
		st = a.status("Strict duplicate YAML key", a.do("POST", cmPath+"?fieldValidation=Strict", dupYAML, "application/yaml"), 400, metav1.StatusReasonBadRequest)
		wantMessage(t, "Strict duplicate YAML key", st, "already set in map")

		a.status("unknown directive", a.do("POST", cmPath+"?fieldValidation=Loose", []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"loose"}}`), "application/json"), 400, metav1.StatusReasonBadRequest)

		// Strict also applies to the result of a patch.
		r = a.do("PATCH", deployPath+"/fv-ignore?fieldValidation=Strict", []byte(`{"spec":{"bar":2}}`), "application/merge-patch+json")
		st = a.status("Strict merge patch", r, 400, metav1.StatusReasonBadRequest)
		wantMessage(t, "Strict merge patch", st, `unknown field "spec.bar"`)
	})

	t.Run("MissingNamespace", func(t *testing.T) {
		a := a.with(t)
		body := `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"orphan"}}`
		st := a.status("create in missing namespace", a.do("POST", "/api/v1/namespaces/x/configmaps", []byte(body), "application/json"), 404, metav1.StatusReasonNotFound)
		wantMessage(t, "create in missing namespace", st, `namespaces "x" not found`)
	})

	t.Run("TerminatingNamespace", func(t *testing.T) {
		a := a.with(t)
		// A finalizer nobody removes keeps the namespace Terminating.
		a.mustCreate("/api/v1/namespaces", `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"bad-terminating","finalizers":["skiff.test/hold"]}}`)
		t.Cleanup(func() {
			a.do("PATCH", "/api/v1/namespaces/bad-terminating", []byte(`{"metadata":{"finalizers":null}}`), "application/merge-patch+json")
			a.do("DELETE", "/api/v1/namespaces/bad-terminating", nil)
		})
		if r := a.do("DELETE", "/api/v1/namespaces/bad-terminating", nil); r.code != http.StatusOK && r.code != http.StatusAccepted {
			t.Fatalf("delete namespace: %s", r)
		}
		body := `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"late"}}`
		st := a.status("create in terminating namespace", a.do("POST", "/api/v1/namespaces/bad-terminating/configmaps", []byte(body), "application/json"), 403, metav1.StatusReasonForbidden)
		wantMessage(t, "create in terminating namespace", st, "because it is being terminated")
	})

	t.Run("Patches", func(t *testing.T) {
		a := a.with(t)
		a.mustCreate(cmPath, `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"patched"},"data":{"a":"1"}}`)
		a.status("text/plain patch", a.do("PATCH", cmPath+"/patched", []byte(`{"data":{"a":"2"}}`), "text/plain"), 415, metav1.StatusReasonUnsupportedMediaType)
		a.status("no content type patch", a.do("PATCH", cmPath+"/patched", []byte(`{"data":{"a":"2"}}`)), 415, metav1.StatusReasonUnsupportedMediaType)
		a.status("apply patch", a.do("PATCH", cmPath+"/patched", []byte(`{}`), "application/apply-patch+yaml"), 415, metav1.StatusReasonUnsupportedMediaType)

		test := `[{"op":"test","path":"/data/a","value":"nope"},{"op":"replace","path":"/data/a","value":"3"}]`
		a.status("failed test op", a.do("PATCH", cmPath+"/patched", []byte(test), "application/json-patch+json"), 422, metav1.StatusReasonInvalid)
		a.status("remove missing path", a.do("PATCH", cmPath+"/patched", []byte(`[{"op":"remove","path":"/data/zzz"}]`), "application/json-patch+json"), 422, metav1.StatusReasonInvalid)
		a.status("JSON patch not a list", a.do("PATCH", cmPath+"/patched", []byte(`{"op":"add"}`), "application/json-patch+json"), 400, metav1.StatusReasonBadRequest)
		a.status("bad merge patch", a.do("PATCH", cmPath+"/patched", []byte(`{"data":`), "application/merge-patch+json"), 400, metav1.StatusReasonBadRequest)
		a.status("bad strategic patch", a.do("PATCH", cmPath+"/patched", []byte(`not json`), "application/strategic-merge-patch+json"), 400, metav1.StatusReasonBadRequest)
		a.status("patch to a wrong type", a.do("PATCH", cmPath+"/patched", []byte(`{"data":"string"}`), "application/merge-patch+json"), 400, metav1.StatusReasonBadRequest)
		a.status("patch of missing object", a.do("PATCH", cmPath+"/nosuch", []byte(`{"data":{"a":"2"}}`), "application/merge-patch+json"), 404, metav1.StatusReasonNotFound)

		// Copies that double the document 40 times would need terabytes.
		ops := []string{`{"op":"add","path":"/data/l0","value":{"x":"` + strings.Repeat("x", 1024) + `"}}`}
		for i := 0; i < 40; i++ {
			ops = append(ops,
				fmt.Sprintf(`{"op":"add","path":"/data/l%d","value":{}}`, i+1),
				fmt.Sprintf(`{"op":"copy","from":"/data/l%d","path":"/data/l%d/a"}`, i, i+1),
				fmt.Sprintf(`{"op":"copy","from":"/data/l%d","path":"/data/l%d/b"}`, i, i+1))
		}
		start := time.Now()
		a.status("copy bomb", a.do("PATCH", cmPath+"/patched", []byte("["+strings.Join(ops, ",")+"]"), "application/json-patch+json"), 422, metav1.StatusReasonInvalid)
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("copy bomb took %v", d)
		}
		many := "[" + strings.TrimSuffix(strings.Repeat(`{"op":"test","path":"/data/a","value":"1"},`, 10001), ",") + "]"
		a.status("10001 operations", a.do("PATCH", cmPath+"/patched", []byte(many), "application/json-patch+json"), 413, metav1.StatusReasonRequestEntityTooLarge)

		// strategicpatch panics on a $retainKeys list that holds objects.
		a.status("$retainKeys of objects", a.do("PATCH", cmPath+"/patched", []byte(`{"data":{"$retainKeys":[{}]}}`), "application/strategic-merge-patch+json"), 400, metav1.StatusReasonBadRequest)
		a.stillServes()

		r := a.do("GET", cmPath+"/patched", nil)
		if !strings.Contains(string(r.body), `"a":"1"`) {
			t.Errorf("failed patches changed the object: %s", r)
		}
	})

	t.Run("UpdateNameMismatch", func(t *testing.T) {
		a := a.with(t)
		a.mustCreate(cmPath, `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"named"}}`)
		body := `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"other"}}`
		st := a.status("PUT name mismatch", a.do("PUT", cmPath+"/named", []byte(body), "application/json"), 400, metav1.StatusReasonBadRequest)
		wantMessage(t, "PUT name mismatch", st, "does not match")
		body = `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"named","namespace":"kube-system"}}`
		a.status("PUT namespace mismatch", a.do("PUT", cmPath+"/named", []byte(body), "application/json"), 400, metav1.StatusReasonBadRequest)
		body = `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"named","resourceVersion":"1"}}`
		a.status("PUT stale resourceVersion", a.do("PUT", cmPath+"/named", []byte(body), "application/json"), 409, metav1.StatusReasonConflict)
		body = `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x","namespace":"kube-system"}}`
		a.status("POST namespace mismatch", a.do("POST", cmPath, []byte(body), "application/json"), 400, metav1.StatusReasonBadRequest)
	})

	t.Run("GarbageProtobuf", func(t *testing.T) {
		a := a.with(t)
		for what, body := range map[string][]byte{
			"random bytes":       {0x01, 0x02, 0xff, 0xfe, 0x00, 0x42},
			"magic then garbage": append([]byte("k8s\x00"), 0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01),
			"magic only":         []byte("k8s\x00"),
			"JSON as protobuf":   []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"j"}}`),
			"truncated unknown":  append([]byte("k8s\x00\x0a\x0c\x0a\x02v1\x12\x06Secret\x12\x05"), 0x0a),
			"unknown kind":       []byte("k8s\x00\x0a\x0b\x0a\x02v1\x12\x05Dummy"),
		} {
			r := a.do("POST", cmPath, body, "application/vnd.kubernetes.protobuf")
			a.status("protobuf "+what, r, 400, metav1.StatusReasonBadRequest)
		}
		pb := protobuf.NewSerializer(scheme.Scheme, scheme.Scheme)
		encode := func(obj runtime.Object) []byte {
			var b bytes.Buffer
			if err := pb.Encode(obj, &b); err != nil {
				t.Fatal(err)
			}
			return b.Bytes()
		}
		secret := encode(&corev1.Secret{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}, ObjectMeta: metav1.ObjectMeta{Name: "pb-secret"}})
		st := a.status("protobuf Secret to configmaps", a.do("POST", cmPath, secret, "application/vnd.kubernetes.protobuf"), 400, metav1.StatusReasonBadRequest)
		wantMessage(t, "protobuf Secret to configmaps", st, "Secret", "ConfigMap")
		cm := encode(&corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"}, ObjectMeta: metav1.ObjectMeta{Name: "pb-cm"}, Data: map[string]string{"a": "b"}})
		if r := a.do("POST", cmPath, cm, "application/vnd.kubernetes.protobuf"); r.code != http.StatusCreated {
			t.Errorf("valid protobuf ConfigMap: %s", r)
		}
		a.stillServes()
	})

	t.Run("GenerateName", func(t *testing.T) {
		a := a.with(t)
		obj := a.mustCreate(cmPath, `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"generateName":"gen-"}}`)
		name, _ := obj["metadata"].(map[string]any)["name"].(string)
		if !regexp.MustCompile(`^gen-[bcdfghjklmnpqrstvwxz2456789]{5}$`).MatchString(name) {
			t.Errorf("generated name %q is not gen- and a 5-character suffix", name)
		}
		if r := a.do("GET", cmPath+"/"+name, nil); r.code != http.StatusOK {
			t.Errorf("generated object not stored: %s", r)
		}
		// A name wins over generateName.
		obj = a.mustCreate(cmPath, `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"fixed","generateName":"gen-"}}`)
		if n := obj["metadata"].(map[string]any)["name"]; n != "fixed" {
			t.Errorf("name with generateName: %v", n)
		}
		// An invalid generateName is reported on metadata.generateName.
		st := a.status("bad generateName", a.do("POST", cmPath, []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"generateName":"Bad_"}}`), "application/json"), 422, metav1.StatusReasonInvalid)
		if len(causes(st)) == 0 {
			t.Errorf("bad generateName: no causes: %+v", st)
		}
	})

	t.Run("DryRun", func(t *testing.T) {
		a := a.with(t)
		r := a.do("POST", cmPath+"?dryRun=All", []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"dry"}}`), "application/json")
		if r.code != http.StatusCreated {
			t.Fatalf("dryRun create: %s", r)
		}
		if !strings.Contains(string(r.body), `"uid"`) {
			t.Errorf("dryRun reply lacks the server-set uid: %s", r)
		}
		a.status("dry-run object stored", a.do("GET", cmPath+"/dry", nil), 404, metav1.StatusReasonNotFound)
		a.status("dryRun=Some", a.do("POST", cmPath+"?dryRun=Some", []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"dry"}}`), "application/json"), 400, metav1.StatusReasonBadRequest)
		// dryRun on update and delete leaves the object as it was.
		a.mustCreate(cmPath, `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"wet"},"data":{"a":"1"}}`)
		if r := a.do("PATCH", cmPath+"/wet?dryRun=All", []byte(`{"data":{"a":"2"}}`), "application/merge-patch+json"); r.code != 200 || !strings.Contains(string(r.body), `"a":"2"`) {
			t.Errorf("dryRun patch: %s", r)
		}
		if r := a.do("DELETE", cmPath+"/wet?dryRun=All", nil); r.code != 200 {
			t.Errorf("dryRun delete: %s", r)
		}
		if r := a.do("GET", cmPath+"/wet", nil); r.code != 200 || !strings.Contains(string(r.body), `"a":"1"`) {
			t.Errorf("after dryRun patch and delete: %s", r)
		}
	})

	t.Run("DeletePreconditions", func(t *testing.T) {
		a := a.with(t)
		obj := a.mustCreate(cmPath, `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"guarded"}}`)
		uid := obj["metadata"].(map[string]any)["uid"].(string)
		body := `{"kind":"DeleteOptions","apiVersion":"v1","preconditions":{"uid":"00000000-0000-0000-0000-000000000000"}}`
		st := a.status("wrong uid precondition", a.do("DELETE", cmPath+"/guarded", []byte(body), "application/json"), 409, metav1.StatusReasonConflict)
		wantMessage(t, "wrong uid precondition", st, "Precondition failed")
		body = `{"kind":"DeleteOptions","apiVersion":"v1","preconditions":{"resourceVersion":"1"}}`
		a.status("wrong resourceVersion precondition", a.do("DELETE", cmPath+"/guarded", []byte(body), "application/json"), 409, metav1.StatusReasonConflict)
		yamlBody := "kind: DeleteOptions\napiVersion: v1\npreconditions:\n  uid: 00000000-0000-0000-0000-000000000000\n"
		a.status("wrong uid precondition in YAML", a.do("DELETE", cmPath+"/guarded", []byte(yamlBody), "application/yaml"), 409, metav1.StatusReasonConflict)
		a.status("bad DeleteOptions", a.do("DELETE", cmPath+"/guarded", []byte(`{"preconditions":`), "application/json"), 400, metav1.StatusReasonBadRequest)
		a.status("bad propagationPolicy", a.do("DELETE", cmPath+"/guarded?propagationPolicy=Sideways", nil), 422, metav1.StatusReasonInvalid)
		if r := a.do("GET", cmPath+"/guarded", nil); r.code != http.StatusOK {
			t.Fatalf("object deleted despite failed preconditions: %s", r)
		}
		body = `{"kind":"DeleteOptions","apiVersion":"v1","preconditions":{"uid":"` + uid + `"}}`
		if r := a.do("DELETE", cmPath+"/guarded", []byte(body), "application/json"); r.code != http.StatusOK {
			t.Errorf("right uid precondition: %s", r)
		}
	})

	t.Run("ImmutableFields", func(t *testing.T) {
		a := a.with(t)
		obj := a.mustCreate(deployPath, deploymentJSON("immutable", ""))
		spec := obj["spec"].(map[string]any)
		spec["selector"] = map[string]any{"matchLabels": map[string]any{"app": "immutable", "extra": "x"}}
		spec["template"].(map[string]any)["metadata"].(map[string]any)["labels"] = map[string]any{"app": "immutable", "extra": "x"}
		body, _ := json.Marshal(obj)
		st := a.status("PUT deployment selector", a.do("PUT", deployPath+"/immutable", body, "application/json"), 422, metav1.StatusReasonInvalid)
		wantCauses(t, "PUT deployment selector", st, "spec.selector")

		pod := a.mustCreate(podPath, `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"immutable"},"spec":{"containers":[{"name":"c","image":"busybox"}]}}`)
		pspec := pod["spec"].(map[string]any)
		pspec["containers"].([]any)[0].(map[string]any)["image"] = "busybox:1.37"
		body, _ = json.Marshal(pod)
		r := a.do("PUT", podPath+"/immutable", body, "application/json")
		if r.code != http.StatusOK {
			t.Fatalf("PUT pod image: %s", r)
		}
		json.Unmarshal(r.body, &pod)
		pspec = pod["spec"].(map[string]any)
		pspec["containers"].([]any)[0].(map[string]any)["command"] = []string{"sleep", "1"}
		body, _ = json.Marshal(pod)
		st = a.status("PUT pod command", a.do("PUT", podPath+"/immutable", body, "application/json"), 422, metav1.StatusReasonInvalid)
		wantCauses(t, "PUT pod command", st, "spec")
		wantMessage(t, "PUT pod command", st, "pod updates may not change fields other than")
		st = a.status("patch pod restartPolicy", a.do("PATCH", podPath+"/immutable", []byte(`{"spec":{"restartPolicy":"Never"}}`), "application/merge-patch+json"), 422, metav1.StatusReasonInvalid)
		wantCauses(t, "patch pod restartPolicy", st, "spec")
		st = a.status("patch pod containers", a.do("PATCH", podPath+"/immutable", []byte(`[{"op":"add","path":"/spec/containers/-","value":{"name":"d","image":"busybox"}}]`), "application/json-patch+json"), 422, metav1.StatusReasonInvalid)
		wantCauses(t, "patch pod containers", st, "spec.containers")

		// metadata.name cannot change through a patch.
		a.mustCreate(cmPath, `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"keeps-name"}}`)
		r = a.do("PATCH", cmPath+"/keeps-name", []byte(`{"metadata":{"name":"renamed"}}`), "application/merge-patch+json")
		if r.code != http.StatusBadRequest && r.code != http.StatusUnprocessableEntity {
			t.Errorf("patch of metadata.name: %s", r)
		}
		if r := a.do("GET", cmPath+"/keeps-name", nil); !strings.Contains(string(r.body), `"name":"keeps-name"`) {
			t.Errorf("after patch of metadata.name: %s", r)
		}
	})

	t.Run("BadMediaTypesVerbsAndQueries", func(t *testing.T) {
		a := a.with(t)
		cm := []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"media"}}`)
		a.status("text/plain body", a.do("POST", cmPath, cm, "text/plain"), 415, metav1.StatusReasonUnsupportedMediaType)
		a.status("unparsable Content-Type", a.do("POST", cmPath, cm, "application/json;;=="), 415, metav1.StatusReasonUnsupportedMediaType)
		a.status("Accept text/html", a.do("GET", cmPath, nil, "Accept: text/html"), 406, metav1.StatusReasonNotAcceptable)
		a.status("POST to a name", a.do("POST", cmPath+"/media", cm, "application/json"), 405, metav1.StatusReasonMethodNotAllowed)
		a.status("PUT of a missing object", a.do("PUT", cmPath+"/media", cm, "application/json"), 404, metav1.StatusReasonNotFound)
		a.status("bad labelSelector", a.do("GET", cmPath+"?labelSelector=a%20in%20(", nil), 400, metav1.StatusReasonBadRequest)
		a.status("unsupported fieldSelector", a.do("GET", cmPath+"?fieldSelector=data.a%3D1", nil), 400, metav1.StatusReasonBadRequest)
		a.status("bad limit", a.do("GET", cmPath+"?limit=-1", nil), 400, metav1.StatusReasonBadRequest)
		a.status("bad continue", a.do("GET", cmPath+"?limit=1&continue=garbage", nil), 400, metav1.StatusReasonBadRequest)
		a.status("bad watch resourceVersion", a.do("GET", cmPath+"?watch=true&resourceVersion=abc", nil), 400, metav1.StatusReasonBadRequest)
		a.status("bad timeoutSeconds", a.do("GET", cmPath+"?watch=true&timeoutSeconds=x", nil), 400, metav1.StatusReasonBadRequest)
		a.status("bad gracePeriodSeconds", a.do("DELETE", cmPath+"/media?gracePeriodSeconds=soon", nil), 400, metav1.StatusReasonBadRequest)
		a.status("namespaced create without namespace", a.do("POST", "/api/v1/configmaps", cm, "application/json"), 405, metav1.StatusReasonMethodNotAllowed)
		a.status("get of a missing object", a.do("GET", cmPath+"/nosuch", nil), 404, metav1.StatusReasonNotFound)
		twice := `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"twice"}}`
		a.mustCreate(cmPath, twice)
		a.status("create twice", a.do("POST", cmPath, []byte(twice), "application/json"), 409, metav1.StatusReasonAlreadyExists)
	})

	a.stillServes()
}

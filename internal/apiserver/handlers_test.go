package apiserver

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiff-sh/skiff/internal/registry"
	"github.com/skiff-sh/skiff/internal/store"
)

// newDecodeServer is an API server with every resource and no store: the
// request decoding path (decodeObject, applyPatch) never reads the store.
func newDecodeServer() *Server {
	return New(Config{}, nil, registry.All())
}

func resourceOf(s *Server, group, resource string) *registry.Resource {
	for gvr, r := range s.resources {
		if gvr.Group == group && gvr.Resource == resource {
			return r
		}
	}
	panic("no resource " + group + "/" + resource)
}

// newDecodeRequest is a create request for res whose body has contentType
// ("" sends none) and whose URL has query.
func newDecodeRequest(res *registry.Resource, contentType, query string) *request {
	r := httptest.NewRequest(http.MethodPost, "/?"+query, nil)
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	ri := requestInfo{Group: res.Group, Version: res.Version, Resource: res.Resource, Verb: "create"}
	if res.Namespaced {
		ri.Namespace = "default"
	}
	return &request{w: httptest.NewRecorder(), r: r, ctx: r.Context(), ri: ri, res: res}
}

// statusOf returns the Status an error becomes, and fails the test when the
// error is not already a Status: a decoding error that reaches toStatus
// unclassified would be answered with a 500.
func statusOf(t testing.TB, err error) metav1.Status {
	t.Helper()
	var se *apierrors.StatusError
	if !errors.As(err, &se) {
		t.Fatalf("error %T %q is not a Kubernetes Status", err, err)
	}
	return se.ErrStatus
}

const deploymentWithUnknownField = `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{"foo":1,` +
	`"selector":{"matchLabels":{"a":"b"}},"template":{"metadata":{"labels":{"a":"b"}},"spec":{"containers":[{"name":"c","image":"i"}]}}}}`

func TestDecodeObjectAppliesFieldValidation(t *testing.T) {
	s := newDecodeServer()
	deploy := resourceOf(s, "apps", "deployments")
	cm := resourceOf(s, "", "configmaps")
	cases := []struct {
		name        string
		res         *registry.Resource
		contentType string
		query       string
		body        string
		wantErr     string // "" means decoded
		wantWarning string // "" means no warning
	}{
		{"strict unknown field", deploy, mediaJSON, "fieldValidation=Strict", deploymentWithUnknownField, `unknown field "spec.foo"`, ""},
		{"warn unknown field", deploy, mediaJSON, "fieldValidation=Warn", deploymentWithUnknownField, "", `unknown field "spec.foo"`},
		{"default is warn", deploy, mediaJSON, "", deploymentWithUnknownField, "", `unknown field "spec.foo"`},
		{"ignore unknown field", deploy, mediaJSON, "fieldValidation=Ignore", deploymentWithUnknownField, "", ""},
		{"strict duplicate field", cm, mediaJSON, "fieldValidation=Strict", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","name":"b"}}`, `duplicate field "metadata.name"`, ""},
		{"warn duplicate field", cm, mediaJSON, "fieldValidation=Warn", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","name":"b"}}`, "", `duplicate field "metadata.name"`},
		{"ignore duplicate field", cm, mediaJSON, "fieldValidation=Ignore", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","name":"b"}}`, "", ""},
		{"strict unknown YAML field", cm, mediaYAML, "fieldValidation=Strict", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\nspecc: {}\n", `unknown field "specc"`, ""},
		{"ignore unknown YAML field", cm, mediaYAML, "fieldValidation=Ignore", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\nspecc: {}\n", "", ""},
		{"strict duplicate YAML key", cm, mediaYAML, "fieldValidation=Strict", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {k: one, k: two}\n", "already set in map", ""},
		{"unknown directive", cm, mediaJSON, "fieldValidation=Lenient", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"}}`, "fieldValidation must be one of", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q := newDecodeRequest(c.res, c.contentType, c.query)
			obj, err := s.decodeObject(q, []byte(c.body), c.res.GroupVersionKind(), c.res.New())
			if c.wantErr != "" {
				st := statusOf(t, err)
				if st.Code != http.StatusBadRequest || !strings.Contains(st.Message, c.wantErr) {
					t.Errorf("got %d %q, want 400 containing %q", st.Code, st.Message, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if obj.GetObjectKind().GroupVersionKind() != c.res.GroupVersionKind() {
				t.Errorf("decoded kind %v", obj.GetObjectKind().GroupVersionKind())
			}
			warnings := strings.Join(q.warnings, "\n")
			if c.wantWarning == "" && warnings != "" {
				t.Errorf("unexpected warnings %q", warnings)
			}
			if c.wantWarning != "" && !strings.Contains(warnings, c.wantWarning) {
				t.Errorf("warnings %q lack %q", warnings, c.wantWarning)
			}
		})
	}
}

func TestDecodeObjectRejectsBadBodiesWithStatus(t *testing.T) {
	s := newDecodeServer()
	cm := resourceOf(s, "", "configmaps")
	cases := []struct {
		name        string
		contentType string
		body        string
		code        int32
		message     string
	}{
		{"empty", mediaJSON, "", 400, "the body of the request was empty"},
		{"blank", mediaJSON, " \n\t ", 400, "the body of the request was empty"},
		{"malformed JSON", mediaJSON, `{"apiVersion":"v1",`, 400, "cannot be handled as a ConfigMap"},
		{"JSON array", mediaJSON, `[]`, 400, ""},
		{"JSON string", mediaJSON, `"x"`, 400, ""},
		{"wrong field type", mediaJSON, `{"apiVersion":"v1","kind":"ConfigMap","data":[1]}`, 400, "cannot be handled as a ConfigMap"},
		{"malformed YAML", mediaYAML, "metadata: [\n", 400, ""},
		{"YAML list", mediaYAML, "- a\n- b\n", 400, ""},
		{"kind mismatch", mediaJSON, `{"apiVersion":"v1","kind":"Service","metadata":{"name":"s"}}`, 400, "the kind in the data (Service) does not match the expected kind (ConfigMap)"},
		{"version mismatch", mediaJSON, `{"apiVersion":"v2","kind":"ConfigMap","metadata":{"name":"s"}}`, 400, ""},
		{"group mismatch", mediaJSON, `{"apiVersion":"apps/v1","kind":"ConfigMap","metadata":{"name":"s"}}`, 400, ""},
		{"unregistered kind", mediaJSON, `{"apiVersion":"v1","kind":"Nothing","metadata":{"name":"s"}}`, 400, ""},
		{"protobuf garbage", mediaProtobuf, "\x01\x02\x03", 400, ""},
		{"protobuf magic only", mediaProtobuf, "k8s\x00", 400, ""},
		{"protobuf bad length", mediaProtobuf, "k8s\x00\x0a\xff\xff\xff\xff\x0f", 400, ""},
		{"unsupported type", "text/plain", `{}`, 415, "unknown format"},
		{"unparsable type", "a/b;;", `{}`, 415, "unknown format"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q := newDecodeRequest(cm, c.contentType, "")
			obj, err := s.decodeObject(q, []byte(c.body), cm.GroupVersionKind(), cm.New())
			if err == nil {
				t.Fatalf("decoded %#v", obj)
			}
			st := statusOf(t, err)
			if st.Code != c.code || !strings.Contains(st.Message, c.message) {
				t.Errorf("got %d %q, want %d containing %q", st.Code, st.Message, c.code, c.message)
			}
		})
	}
}

func TestDecodeObjectReadsEveryMediaType(t *testing.T) {
	s := newDecodeServer()
	cm := resourceOf(s, "", "configmaps")
	want := &corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Name: "c", Labels: map[string]string{"a": "b"}}, Data: map[string]string{"k": "v"}}
	var pb bytes.Buffer
	if err := s.codecs.proto.Serializer.Encode(want, &pb); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, contentType, body string }{
		{"JSON", mediaJSON, `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c","labels":{"a":"b"}},"data":{"k":"v"}}`},
		{"JSON with charset", mediaJSON + "; charset=utf-8", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c","labels":{"a":"b"}},"data":{"k":"v"}}`},
		{"no Content-Type", "", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c","labels":{"a":"b"}},"data":{"k":"v"}}`},
		{"no kind: the path says", mediaJSON, `{"metadata":{"name":"c","labels":{"a":"b"}},"data":{"k":"v"}}`},
		{"YAML", mediaYAML, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  labels: {a: b}\ndata:\n  k: v\n"},
		{"protobuf", mediaProtobuf, pb.String()},
	} {
		t.Run(c.name, func(t *testing.T) {
			q := newDecodeRequest(cm, c.contentType, "fieldValidation=Strict")
			obj, err := s.decodeObject(q, []byte(c.body), cm.GroupVersionKind(), cm.New())
			if err != nil {
				t.Fatal(err)
			}
			got, ok := obj.(*corev1.ConfigMap)
			if !ok || got.Name != "c" || got.Labels["a"] != "b" || got.Data["k"] != "v" || got.Kind != "ConfigMap" || got.APIVersion != "v1" {
				t.Errorf("decoded %#v", obj)
			}
		})
	}
}

// copyBomb is a JSON patch whose copies double the document levels times.
func copyBomb(levels int) []byte {
	ops := []string{`{"op":"add","path":"/data/l0","value":{"x":"` + strings.Repeat("x", 1024) + `"}}`}
	for i := 0; i < levels; i++ {
		ops = append(ops,
			fmt.Sprintf(`{"op":"add","path":"/data/l%d","value":{}}`, i+1),
			fmt.Sprintf(`{"op":"copy","from":"/data/l%d","path":"/data/l%d/a"}`, i, i+1),
			fmt.Sprintf(`{"op":"copy","from":"/data/l%d","path":"/data/l%d/b"}`, i, i+1))
	}
	return []byte("[" + strings.Join(ops, ",") + "]")
}

func TestApplyPatchAppliesOrAnswersWithStatus(t *testing.T) {
	original := []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c","labels":{"a":"b"}},"data":{"k":"v"}}`)
	pod := []byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"a","image":"one"},{"name":"b","image":"two"}]}}`)
	manyOps := "[" + strings.TrimSuffix(strings.Repeat(`{"op":"test","path":"/data/k","value":"v"},`, 10001), ",") + "]"
	cases := []struct {
		name     string
		pt       types.PatchType
		original []byte
		patch    string
		schema   runtime.Object
		code     int32  // 0: applies
		want     string // in the result or the error message
	}{
		{"JSON patch", types.JSONPatchType, original, `[{"op":"replace","path":"/data/k","value":"w"}]`, nil, 0, `"k":"w"`},
		{"JSON patch not a list", types.JSONPatchType, original, `{"op":"add"}`, nil, 400, "invalid JSON patch"},
		{"JSON patch malformed", types.JSONPatchType, original, `[{"op":`, nil, 400, "invalid JSON patch"},
		{"JSON patch failed test", types.JSONPatchType, original, `[{"op":"test","path":"/data/k","value":"nope"}]`, nil, 422, "testing value /data/k failed"},
		{"JSON patch missing path", types.JSONPatchType, original, `[{"op":"remove","path":"/data/zz"}]`, nil, 422, ""},
		{"JSON patch unknown op", types.JSONPatchType, original, `[{"op":"frobnicate","path":"/data"}]`, nil, 422, ""},
		{"JSON patch too many operations", types.JSONPatchType, original, manyOps, nil, 413, "10000"},
		{"JSON patch copy bomb", types.JSONPatchType, original, string(copyBomb(16)), nil, 422, "copy"},
		{"JSON patch small copies", types.JSONPatchType, original, string(copyBomb(3)), nil, 0, `"l3"`},
		{"merge patch", types.MergePatchType, original, `{"data":{"k":null,"n":"m"}}`, nil, 0, `"data":{"n":"m"}`},
		{"merge patch malformed", types.MergePatchType, original, `{"data":`, nil, 400, "invalid merge patch"},
		{"strategic merge by name", types.StrategicMergePatchType, pod, `{"spec":{"containers":[{"name":"b","image":"three"}]}}`, &corev1.Pod{}, 0, `{"image":"three","name":"b"}`},
		{"strategic delete directive", types.StrategicMergePatchType, pod, `{"spec":{"containers":[{"name":"a","$patch":"delete"}]}}`, &corev1.Pod{}, 0, `"containers":[{"image":"two","name":"b"}]`},
		{"strategic malformed", types.StrategicMergePatchType, pod, `not json`, &corev1.Pod{}, 400, "invalid strategic merge patch"},
		{"strategic $retainKeys of objects", types.StrategicMergePatchType, pod, `{"spec":{"$retainKeys":[{}]}}`, &corev1.Pod{}, 400, "invalid strategic merge patch"},
		{"strategic bad directive", types.StrategicMergePatchType, pod, `{"spec":{"$patch":"explode"}}`, &corev1.Pod{}, 400, ""},
		{"strategic into a Deployment", types.StrategicMergePatchType, []byte(`{"spec":{"replicas":1}}`), `{"spec":{"replicas":3}}`, &appsv1.Deployment{}, 0, `"replicas":3`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := applyPatch(c.pt, c.original, []byte(c.patch), c.schema)
			if c.code == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(string(out), c.want) {
					t.Errorf("result %s lacks %s", out, c.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("applied: %.300s", out)
			}
			st := statusOf(t, err)
			if st.Code != c.code || !strings.Contains(st.Message, c.want) {
				t.Errorf("got %d %q, want %d containing %q", st.Code, st.Message, c.code, c.want)
			}
		})
	}
}

func TestPatchTypeFromContentType(t *testing.T) {
	for ct, want := range map[string]types.PatchType{
		"application/json-patch+json":                   types.JSONPatchType,
		"application/merge-patch+json":                  types.MergePatchType,
		"application/strategic-merge-patch+json":        types.StrategicMergePatchType,
		"application/merge-patch+json; charset=utf-8":   types.MergePatchType,
		"application/json":                              "",
		"text/plain":                                    "",
		"":                                              "",
		"application/apply-patch+yaml":                  "",
		"application/apply-patch+cbor":                  "",
		"application/strategic-merge-patch+json;;bad=;": "",
	} {
		r := httptest.NewRequest(http.MethodPatch, "/", nil)
		r.Header.Set("Content-Type", ct)
		got, err := patchType(r)
		if want != "" {
			if err != nil || got != want {
				t.Errorf("%q: %q %v, want %q", ct, got, err, want)
			}
			continue
		}
		if st := statusOf(t, err); st.Code != http.StatusUnsupportedMediaType {
			t.Errorf("%q: %d %q, want 415", ct, st.Code, st.Message)
		}
	}
}

func TestReadBodyStopsAtTheLimit(t *testing.T) {
	for _, c := range []struct {
		size int
		code int32
	}{{0, 0}, {maxBodyBytes, 0}, {maxBodyBytes + 1, 413}, {maxBodyBytes * 2, 413}} {
		r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(make([]byte, c.size)))
		data, err := readBody(r)
		if c.code == 0 {
			if err != nil || len(data) != c.size {
				t.Errorf("%d bytes: %d %v", c.size, len(data), err)
			}
			continue
		}
		if st := statusOf(t, err); st.Code != c.code || st.Reason != metav1.StatusReasonRequestEntityTooLarge {
			t.Errorf("%d bytes: %+v", c.size, st)
		}
	}
}

func TestQueryDirectives(t *testing.T) {
	for _, c := range []struct {
		query   string
		dry     bool
		fv      string
		badDry  bool
		badFV   bool
		comment string
	}{
		{"", false, "Warn", false, false, "defaults"},
		{"dryRun=All&fieldValidation=Strict", true, "Strict", false, false, ""},
		{"dryRun=All&dryRun=All&fieldValidation=Ignore", true, "Ignore", false, false, "repeated dryRun"},
		{"dryRun=Some&fieldValidation=strict", false, "", true, true, "values are case-sensitive"},
		{"dryRun=", false, "Warn", true, false, "empty dryRun"},
	} {
		r := httptest.NewRequest(http.MethodPost, "/?"+c.query, nil)
		dry, err := dryRun(r)
		if c.badDry {
			if st := statusOf(t, err); st.Code != 400 {
				t.Errorf("%s: dryRun error %+v", c.query, st)
			}
		} else if err != nil || dry != c.dry {
			t.Errorf("%s: dryRun %v %v", c.query, dry, err)
		}
		fv, err := fieldValidation(r)
		if c.badFV {
			if st := statusOf(t, err); st.Code != 400 {
				t.Errorf("%s: fieldValidation error %+v", c.query, st)
			}
		} else if err != nil || fv != c.fv {
			t.Errorf("%s: fieldValidation %q %v", c.query, fv, err)
		}
	}
}

func TestNegotiatePicksTheClientsFormat(t *testing.T) {
	s := newDecodeServer()
	pod := &corev1.Pod{}
	for _, c := range []struct {
		accept    string
		sample    runtime.Object
		media, as string
		code      int32
	}{
		{"", pod, mediaJSON, "", 0},
		{"*/*", pod, mediaJSON, "", 0},
		{"application/yaml", pod, mediaYAML, "", 0},
		{mediaProtobuf + ", application/json", pod, mediaProtobuf, "", 0},
		{"application/json;as=Table;v=v1;g=meta.k8s.io, application/json", pod, mediaJSON, "Table", 0},
		{"application/json;as=Table;v=v9;g=meta.k8s.io, application/yaml", pod, mediaYAML, "", 0},
		{"application/json;as=Nonsense;v=v1;g=meta.k8s.io", pod, "", "", 406},
		{"text/html", pod, "", "", 406},
		{";;;", pod, "", "", 406},
		{mediaProtobuf, nil, mediaProtobuf, "", 0},
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		if c.accept != "" {
			r.Header.Set("Accept", c.accept)
		}
		out, err := s.codecs.negotiate(r, c.sample)
		if c.code != 0 {
			if st := statusOf(t, err); st.Code != c.code {
				t.Errorf("Accept %q: %+v", c.accept, st)
			}
			continue
		}
		if err != nil || out.Media != c.media || out.As != c.as || out.Info.Serializer == nil {
			t.Errorf("Accept %q: %+v %v, want %s as %q", c.accept, out, err, c.media, c.as)
		}
	}
}

func TestToStatusTranslatesStoreErrorClasses(t *testing.T) {
	gr := schema.GroupResource{Group: "apps", Resource: "deployments"}
	for _, c := range []struct {
		err    error
		code   int32
		reason metav1.StatusReason
	}{
		{store.ErrNotFound, 404, metav1.StatusReasonNotFound},
		{fmt.Errorf("get x: %w", store.ErrNotFound), 404, metav1.StatusReasonNotFound},
		{store.ErrExists, 409, metav1.StatusReasonAlreadyExists},
		{store.ErrConflict, 409, metav1.StatusReasonConflict},
		{store.ErrExpired, 410, metav1.StatusReasonExpired},
		{&store.Error{Class: store.ErrExpired, Msg: "too old resource version: 1 (5)"}, 410, metav1.StatusReasonExpired},
		{store.ErrInvalidContinue, 400, metav1.StatusReasonBadRequest},
		{store.ErrTooLarge, 504, metav1.StatusReasonTimeout},
		{apierrors.NewForbidden(gr, "x", errors.New("no")), 403, metav1.StatusReasonForbidden},
		{errors.New("disk on fire"), 500, metav1.StatusReasonInternalError},
	} {
		st := toStatus(c.err, gr, "x").ErrStatus
		if st.Code != c.code || st.Reason != c.reason {
			t.Errorf("%v: %d %s, want %d %s", c.err, st.Code, st.Reason, c.code, c.reason)
		}
	}
}

package openapi

import (
	"crypto/sha512"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"strings"
	"testing"

	openapi_v3 "github.com/google/gnostic-models/openapiv3"
	"google.golang.org/protobuf/proto"
	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/openapi"
	"k8s.io/client-go/openapi3"
	"k8s.io/client-go/rest"
	"k8s.io/kube-openapi/pkg/spec3"
	openapiproto "k8s.io/kube-openapi/pkg/util/proto"

	"github.com/skiff-sh/skiff/internal/registry"
)

// newServer serves the documents of every registry resource.
func newServer(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(New(registry.All()))
	t.Cleanup(srv.Close)
	return srv
}

// openAPIClient is the OpenAPI v3 client kubectl builds from discovery.
func openAPIClient(t *testing.T, srv *httptest.Server) openapi.Client {
	t.Helper()
	dc, err := discovery.NewDiscoveryClientForConfig(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return dc.OpenAPIV3()
}

func get(t *testing.T, url string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func TestIndexListsGroupVersionsWithDocumentHashes(t *testing.T) {
	srv := newServer(t)
	resp, body := get(t, srv.URL+"/openapi/v3")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /openapi/v3: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var idx index
	if err := json.Unmarshal(body, &idx); err != nil {
		t.Fatal(err)
	}
	hashURL := regexp.MustCompile(`^/openapi/v3/(api/v1|apis/[^/]+/[^/]+)\?hash=([0-9A-F]{128})$`)
	for _, key := range []string{"api/v1", "apis/apps/v1", "apis/settings.k8s.io/v1alpha1"} {
		entry, ok := idx.Paths[key]
		if !ok {
			t.Fatalf("index has no %s: %s", key, body)
		}
		m := hashURL.FindStringSubmatch(entry.ServerRelativeURL)
		if m == nil || m[1] != key {
			t.Fatalf("%s: serverRelativeURL %q", key, entry.ServerRelativeURL)
		}
		resp, doc := get(t, srv.URL+entry.ServerRelativeURL, "Accept", "application/json")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d", entry.ServerRelativeURL, resp.StatusCode)
		}
		if got := fmt.Sprintf("%X", sha512.Sum512(doc)); got != m[2] {
			t.Errorf("%s: hash %s, document hashes to %s", key, m[2], got)
		}
		if cc := resp.Header.Get("Cache-Control"); cc != "public, immutable" {
			t.Errorf("%s: Cache-Control %q", key, cc)
		}
		if etag := resp.Header.Get("Etag"); etag != `"`+m[2]+`"` {
			t.Errorf("%s: Etag %q", key, etag)
		}
	}
}

func TestGroupDocumentRevalidatesAndRedirectsStaleHash(t *testing.T) {
	srv := newServer(t)
	resp, _ := get(t, srv.URL+"/openapi/v3/apis/apps/v1")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "" {
		t.Fatalf("without hash: %d, Cache-Control %q", resp.StatusCode, resp.Header.Get("Cache-Control"))
	}
	etag := resp.Header.Get("Etag")

	resp, _ = get(t, srv.URL+"/openapi/v3/apis/apps/v1", "If-None-Match", etag)
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: %d, want 304", resp.StatusCode)
	}

	resp, _ = get(t, srv.URL+"/openapi/v3/apis/apps/v1?hash=0BAD")
	want := "/openapi/v3/apis/apps/v1?hash=" + strings.Trim(etag, `"`)
	if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != want {
		t.Errorf("stale hash: %d to %q, want 301 to %q", resp.StatusCode, resp.Header.Get("Location"), want)
	}
}

func TestUnknownPathsMethodsAndMediaTypesAreRefused(t *testing.T) {
	srv := newServer(t)
	for _, tc := range []struct {
		path, accept string
		want         int
	}{
		{"/openapi/v3/apis/nope/v1", "", http.StatusNotFound},
		{"/openapi/v4", "", http.StatusNotFound},
		{"/openapi/v3/apis/apps/v1", "text/html", http.StatusNotAcceptable},
		{"/openapi/v2", "application/yaml", http.StatusNotAcceptable},
	} {
		resp, _ := get(t, srv.URL+tc.path, "Accept", tc.accept)
		if resp.StatusCode != tc.want {
			t.Errorf("GET %s (Accept %q): %d, want %d", tc.path, tc.accept, resp.StatusCode, tc.want)
		}
	}
	resp, err := http.Post(srv.URL+"/openapi/v2", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /openapi/v2: %d, want 405", resp.StatusCode)
	}
}

// gvSpec fetches a group version's document the way kubectl does.
func gvSpec(t *testing.T, srv *httptest.Server, gv schema.GroupVersion) *spec3.OpenAPI {
	t.Helper()
	doc, err := openapi3.NewRoot(openAPIClient(t, srv)).GVSpec(gv)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// patchOperation finds the PATCH operation tagged with gvk, as kubectl's
// query-param verifier and apply's patcher do.
func patchOperation(doc *spec3.OpenAPI, gvk schema.GroupVersionKind) (string, *spec3.Operation) {
	for path, item := range doc.Paths.Paths {
		if item == nil || item.Patch == nil {
			continue
		}
		var got map[string]string
		if err := item.Patch.Extensions.GetObject("x-kubernetes-group-version-kind", &got); err != nil {
			continue
		}
		if got["group"] == gvk.Group && got["version"] == gvk.Version && got["kind"] == gvk.Kind {
			return path, item.Patch
		}
	}
	return "", nil
}

func TestPatchOperationsOfferFieldValidation(t *testing.T) {
	srv := newServer(t)
	for _, gvk := range []schema.GroupVersionKind{
		{Group: "apps", Version: "v1", Kind: "Deployment"},
		{Group: "", Version: "v1", Kind: "Pod"},
		{Group: "", Version: "v1", Kind: "Namespace"},
		{Group: "settings.k8s.io", Version: "v1alpha1", Kind: "PodPreset"},
	} {
		doc := gvSpec(t, srv, gvk.GroupVersion())
		path, op := patchOperation(doc, gvk)
		if op == nil {
			t.Errorf("%s: no PATCH operation tagged with it", gvk)
			continue
		}
		var params []string
		for _, p := range op.Parameters {
			params = append(params, p.In+":"+p.Name)
		}
		for _, want := range []string{"query:fieldValidation", "query:fieldManager", "query:dryRun"} {
			if !strings.Contains(strings.Join(params, " "), want) {
				t.Errorf("%s %s: parameters %v lack %s", gvk, path, params, want)
			}
		}
		if op.RequestBody == nil || op.RequestBody.Content["application/strategic-merge-patch+json"] == nil {
			t.Errorf("%s %s: request body does not take strategic merge patches", gvk, path)
		}
		if action, _ := op.Extensions.GetString("x-kubernetes-action"); action != "patch" {
			t.Errorf("%s %s: x-kubernetes-action %q", gvk, path, action)
		}
	}
}

// testResources are a namespaced resource with status and scale, a
// cluster-scoped one and a create-only one.
func testResources() []*registry.Resource {
	return []*registry.Resource{
		{
			GroupVersionResource: appsv1.SchemeGroupVersion.WithResource("deployments"),
			Kind:                 "Deployment",
			Namespaced:           true,
			New:                  func() runtime.Object { return &appsv1.Deployment{} },
			NewList:              func() runtime.Object { return &appsv1.DeploymentList{} },
			Status:               true,
			Scale:                &registry.ScaleAccess{},
		},
		{
			GroupVersionResource: corev1.SchemeGroupVersion.WithResource("namespaces"),
			Kind:                 "Namespace",
			New:                  func() runtime.Object { return &corev1.Namespace{} },
			NewList:              func() runtime.Object { return &corev1.NamespaceList{} },
		},
		{
			GroupVersionResource: authorizationv1.SchemeGroupVersion.WithResource("selfsubjectaccessreviews"),
			Kind:                 "SelfSubjectAccessReview",
			New:                  func() runtime.Object { return &authorizationv1.SelfSubjectAccessReview{} },
			CreateOnly:           true,
		},
	}
}

func TestResourcePathsFollowKubeAPIServer(t *testing.T) {
	h := New(testResources())
	want := map[string]map[string]string{ // path → method → operationId
		"/api/v1/":                       {"get": "getCoreV1APIResources"},
		"/apis/apps/v1/":                 {"get": "getAppsV1APIResources"},
		"/apis/authorization.k8s.io/v1/": {"get": "getAuthorizationV1APIResources"},
		"/apis/apps/v1/namespaces/{namespace}/deployments": {
			"get": "listAppsV1NamespacedDeployment", "post": "createAppsV1NamespacedDeployment",
			"delete": "deleteAppsV1CollectionNamespacedDeployment",
		},
		"/apis/apps/v1/namespaces/{namespace}/deployments/{name}": {
			"get": "readAppsV1NamespacedDeployment", "put": "replaceAppsV1NamespacedDeployment",
			"patch": "patchAppsV1NamespacedDeployment", "delete": "deleteAppsV1NamespacedDeployment",
		},
		"/apis/apps/v1/namespaces/{namespace}/deployments/{name}/status": {
			"get": "readAppsV1NamespacedDeploymentStatus", "put": "replaceAppsV1NamespacedDeploymentStatus",
			"patch": "patchAppsV1NamespacedDeploymentStatus",
		},
		"/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale": {
			"get": "readAppsV1NamespacedDeploymentScale", "put": "replaceAppsV1NamespacedDeploymentScale",
			"patch": "patchAppsV1NamespacedDeploymentScale",
		},
		"/apis/apps/v1/deployments": {"get": "listAppsV1DeploymentForAllNamespaces"},
		"/api/v1/namespaces":        {"get": "listCoreV1Namespace", "post": "createCoreV1Namespace", "delete": "deleteCoreV1CollectionNamespace"},
		"/api/v1/namespaces/{name}": {
			"get": "readCoreV1Namespace", "put": "replaceCoreV1Namespace",
			"patch": "patchCoreV1Namespace", "delete": "deleteCoreV1Namespace",
		},
		"/apis/authorization.k8s.io/v1/selfsubjectaccessreviews": {"post": "createAuthorizationV1SelfSubjectAccessReview"},
	}
	got := map[string]map[string]string{}
	var scalePatch, list map[string]any
	for _, g := range h.groups {
		data, _, err := g.json.get()
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Paths map[string]map[string]json.RawMessage
		}
		if err := json.Unmarshal(data, &doc); err != nil {
			t.Fatal(err)
		}
		for path, item := range doc.Paths {
			got[path] = map[string]string{}
			for method, raw := range item {
				if method == "parameters" {
					continue
				}
				var op map[string]any
				if err := json.Unmarshal(raw, &op); err != nil {
					t.Fatal(err)
				}
				got[path][method], _ = op["operationId"].(string)
				switch {
				case method == "patch" && strings.HasSuffix(path, "/scale"):
					scalePatch = op
				case method == "get" && path == "/apis/apps/v1/namespaces/{namespace}/deployments":
					list = op
				}
			}
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("paths and operations:\n got %v\nwant %v", got, want)
	}
	if gvk := scalePatch["x-kubernetes-group-version-kind"]; !reflect.DeepEqual(gvk, map[string]any{"group": "autoscaling", "version": "v1", "kind": "Scale"}) {
		t.Errorf("scale patch is tagged %v, want autoscaling/v1 Scale", gvk)
	}
	if list["x-kubernetes-action"] != "list" {
		t.Errorf("list action %v", list["x-kubernetes-action"])
	}
	params := fmt.Sprint(list["parameters"])
	for _, want := range []string{"labelSelector", "fieldSelector", "limit", "continue", "resourceVersion", "watch", "timeoutSeconds"} {
		if !strings.Contains(params, "name:"+want+" ") {
			t.Errorf("list parameters %v lack %s", params, want)
		}
	}
}

func TestSchemasCarryDescriptionsAndKinds(t *testing.T) {
	srv := newServer(t)
	core := gvSpec(t, srv, schema.GroupVersion{Version: "v1"})
	container := core.Components.Schemas["io.k8s.api.core.v1.Container"]
	if container == nil {
		t.Fatal("no schema io.k8s.api.core.v1.Container")
	}
	image, ok := container.Properties["image"]
	if !ok || !strings.Contains(image.Description, "Container image name") || !image.Type.Contains("string") {
		t.Errorf("Container.image: %+v", image.SchemaProps)
	}
	if !strings.Contains(strings.Join(container.Required, ","), "name") {
		t.Errorf("Container.required %v lacks name", container.Required)
	}
	containers := core.Components.Schemas["io.k8s.api.core.v1.PodSpec"].Properties["containers"]
	if containers.Extensions["x-kubernetes-patch-strategy"] != "merge" || containers.Extensions["x-kubernetes-patch-merge-key"] != "name" {
		t.Errorf("PodSpec.containers extensions %v", containers.Extensions)
	}
	meta := core.Components.Schemas["io.k8s.api.core.v1.Pod"].Properties["metadata"]
	if len(meta.AllOf) != 1 || meta.AllOf[0].Ref.String() != "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta" || meta.Description == "" {
		t.Errorf("Pod.metadata: %+v", meta.SchemaProps)
	}
	created := core.Components.Schemas["io.k8s.apimachinery.pkg.apis.meta.v1.Time"]
	if created == nil || !created.Type.Contains("string") || created.Format != "date-time" {
		t.Errorf("Time schema: %+v", created)
	}
	for name, kind := range map[string]string{"io.k8s.api.core.v1.Pod": "Pod", "io.k8s.api.core.v1.PodList": "PodList"} {
		var gvks []map[string]string
		if err := core.Components.Schemas[name].Extensions.GetObject("x-kubernetes-group-version-kind", &gvks); err != nil ||
			len(gvks) != 1 || gvks[0]["group"] != "" || gvks[0]["version"] != "v1" || gvks[0]["kind"] != kind {
			t.Errorf("%s tagged %v (%v)", name, gvks, err)
		}
	}

	settings := gvSpec(t, srv, schema.GroupVersion{Group: "settings.k8s.io", Version: "v1alpha1"})
	preset := settings.Components.Schemas["io.k8s.api.settings.v1alpha1.PodPreset"]
	if preset == nil || preset.Properties["spec"].AllOf == nil {
		t.Fatalf("PodPreset schema: %+v", preset)
	}
	volumes := settings.Components.Schemas["io.k8s.api.settings.v1alpha1.PodPresetSpec"].Properties["volumes"]
	if volumes.Extensions["x-kubernetes-patch-merge-key"] != "name" {
		t.Errorf("PodPresetSpec.volumes extensions %v", volumes.Extensions)
	}
}

// TestApplyComputesMergePatchesFromSchemas runs the three-way strategic
// merge that kubectl apply builds from the v3 schemas: containers must be
// merged by name, not replaced.
func TestApplyComputesMergePatchesFromSchemas(t *testing.T) {
	srv := newServer(t)
	doc := gvSpec(t, srv, schema.GroupVersion{Group: "apps", Version: "v1"})
	meta := strategicpatch.PatchMetaFromOpenAPIV3{
		Schema:     doc.Components.Schemas["io.k8s.api.apps.v1.Deployment"],
		SchemaList: doc.Components.Schemas,
	}
	original := []byte(`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"},"spec":{"template":{"spec":{"containers":[{"name":"a","image":"a:1"}]}}}}`)
	modified := []byte(`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"},"spec":{"template":{"spec":{"containers":[{"name":"a","image":"a:2"},{"name":"b","image":"b:1"}]}}}}`)
	current := []byte(`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"},"spec":{"replicas":1,"template":{"spec":{"containers":[{"name":"a","image":"a:1","imagePullPolicy":"Always"}]}}}}`)
	patch, err := strategicpatch.CreateThreeWayMergePatch(original, modified, current, meta, false)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(patch), `"$setElementOrder/containers":[{"name":"a"},{"name":"b"}]`) {
		t.Errorf("patch does not merge containers by name: %s", patch)
	}
}

func TestV2ProtobufParsesAsKubectlReadsIt(t *testing.T) {
	srv := newServer(t)
	resp, _ := get(t, srv.URL+"/openapi/v2", "Accept", "application/com.github.proto-openapi.spec.v2@v1.0+protobuf")
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != "application/com.github.proto-openapi.spec.v2.v1.0+protobuf" {
		t.Fatalf("GET /openapi/v2: %d, Content-Type %q", resp.StatusCode, ct)
	}

	// client-go's discovery client is what kubectl uses to fetch and parse it.
	dc, err := discovery.NewDiscoveryClientForConfig(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	doc, err := dc.OpenAPISchema()
	if err != nil {
		t.Fatal(err)
	}
	models, err := openapiproto.NewOpenAPIData(doc)
	if err != nil {
		t.Fatalf("kube-openapi cannot read the v2 document: %v", err)
	}
	deploy, ok := models.LookupModel("io.k8s.api.apps.v1.Deployment").(*openapiproto.Kind)
	if !ok {
		t.Fatalf("no Deployment model")
	}
	if _, ok := deploy.Fields["spec"]; !ok {
		t.Errorf("Deployment model has fields %v", deploy.Keys())
	}

	var found bool
	for _, item := range doc.GetPaths().GetPath() {
		if item.Name != "/apis/apps/v1/namespaces/{namespace}/deployments/{name}" {
			continue
		}
		for _, p := range item.GetValue().GetPatch().GetParameters() {
			if q := p.GetParameter().GetNonBodyParameter().GetQueryParameterSubSchema(); q.GetName() == "fieldValidation" {
				found = true
			}
		}
	}
	if !found {
		t.Error("v2 deployment PATCH has no fieldValidation query parameter")
	}

	resp, body := get(t, srv.URL+"/openapi/v2", "Accept", "application/json")
	if resp.Header.Get("Content-Type") != "application/json" || !json.Valid(body) || !strings.Contains(string(body), `"swagger":"2.0"`) {
		t.Errorf("v2 JSON: %q, %.100s", resp.Header.Get("Content-Type"), body)
	}
}

func TestV3ProtobufParses(t *testing.T) {
	srv := newServer(t)
	resp, body := get(t, srv.URL+"/openapi/v3/api/v1", "Accept", "application/com.github.proto-openapi.spec.v3@v1.0+protobuf")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/com.github.proto-openapi.spec.v3.v1.0+protobuf" {
		t.Fatalf("GET: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var doc openapi_v3.Document
	if err := proto.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.GetInfo().GetTitle() != "Kubernetes" || len(doc.GetComponents().GetSchemas().GetAdditionalProperties()) == 0 {
		t.Errorf("document: info %v, %d schemas", doc.GetInfo(), len(doc.GetComponents().GetSchemas().GetAdditionalProperties()))
	}
}

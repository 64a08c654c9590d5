// These tests run kubectl's own code against the documents: explain, the
// query-param verifier of apply/create/edit, and apply's v2 fallback.

package openapi

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/resource"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	explainv2 "k8s.io/kubectl/pkg/explain/v2"
	kubectlopenapi "k8s.io/kubectl/pkg/util/openapi"

	"github.com/skiff-sh/skiff/internal/registry"
)

func TestKubectlExplainRendersFields(t *testing.T) {
	srv := newServer(t)
	client := openAPIClient(t, srv)
	for _, tc := range []struct {
		gvr       schema.GroupVersionResource
		path      []string
		recursive bool
		want      []string
	}{
		{
			gvr:  schema.GroupVersionResource{Version: "v1", Resource: "pods"},
			path: []string{"spec", "containers"},
			want: []string{"KIND:       Pod", "FIELD: containers <[]Container>", "image\t<string>", "Container image name", "name\t<string> -required-"},
		},
		{
			gvr:       schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"},
			recursive: true,
			want:      []string{"GROUP:      apps", "KIND:       Deployment", "replicas\t<integer>", "resources\t<ResourceRequirements>", "creationTimestamp\t<string>"},
		},
		{
			gvr:  schema.GroupVersionResource{Version: "v1", Resource: "pods"},
			path: []string{"spec", "containers", "resources", "limits"},
			want: []string{"FIELD: limits <map[string]Quantity>"},
		},
		{
			gvr:  schema.GroupVersionResource{Group: "settings.k8s.io", Version: "v1alpha1", Resource: "podpresets"},
			path: []string{"spec"},
			want: []string{"KIND:       PodPreset", "volumes\t<[]Volume>"},
		},
	} {
		var out bytes.Buffer
		if err := explainv2.PrintModelDescription(tc.path, &out, client, tc.gvr, tc.recursive, 0, "plaintext"); err != nil {
			t.Errorf("explain %s %v: %v", tc.gvr, tc.path, err)
			continue
		}
		for _, want := range tc.want {
			if !strings.Contains(out.String(), want) {
				t.Errorf("explain %s %v lacks %q:\n%s", tc.gvr, tc.path, want, out.String())
			}
		}
	}
}

func TestKubectlExplainsEveryResource(t *testing.T) {
	srv := newServer(t)
	client := openAPIClient(t, srv)
	for _, r := range registry.All() {
		var out bytes.Buffer
		if err := explainv2.PrintModelDescription(nil, &out, client, r.GroupVersionResource, true, 0, "plaintext"); err != nil {
			t.Errorf("explain %s --recursive: %v", r.GroupVersionResource, err)
			continue
		}
		if !strings.Contains(out.String(), "KIND:       "+r.Kind+"\n") {
			t.Errorf("explain %s --recursive:\n%.500s", r.GroupVersionResource, out.String())
		}
	}
}

func TestKubectlLeavesFieldValidationToServer(t *testing.T) {
	srv := newServer(t)
	dyn, err := dynamic.NewForConfig(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	verifier := resource.NewQueryParamVerifierV3(dyn, openAPIClient(t, srv), resource.QueryParamFieldValidation)
	for _, r := range registry.All() {
		if !slices.Contains(r.Verbs(), "patch") {
			continue
		}
		if err := verifier.HasSupport(r.GroupVersionKind()); err != nil {
			t.Errorf("%s: %v", r.GroupVersionKind(), err)
		}
	}
}

// TestKubectlFindsStrategicMergeInV2 is apply's fallback when v3 fails: the
// v2 document must map GVKs to models and say PATCH takes strategic merge.
func TestKubectlFindsStrategicMergeInV2(t *testing.T) {
	srv := newServer(t)
	dc, err := discovery.NewDiscoveryClientForConfig(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	doc, err := dc.OpenAPISchema()
	if err != nil {
		t.Fatal(err)
	}
	resources, err := kubectlopenapi.NewOpenAPIData(doc)
	if err != nil {
		t.Fatal(err)
	}
	gvk := schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}
	if resources.LookupResource(gvk) == nil {
		t.Errorf("no v2 model for %s", gvk)
	}
	consumes := resources.GetConsumes(gvk, "PATCH")
	if !strings.Contains(strings.Join(consumes, ","), "application/strategic-merge-patch+json") {
		t.Errorf("PATCH %s consumes %v", gvk, consumes)
	}
}

package apiserver

import (
	"net/http/httptest"
	"testing"
)

func TestParseRequestInfo(t *testing.T) {
	cases := []struct {
		method, path string
		want         requestInfo
	}{
		{"GET", "/api/v1/pods", requestInfo{APIPrefix: "api", Version: "v1", Resource: "pods", Verb: "list"}},
		{"GET", "/api/v1/namespaces/ns1/pods?watch=true", requestInfo{APIPrefix: "api", Version: "v1", Namespace: "ns1", Resource: "pods", Verb: "watch"}},
		{"GET", "/api/v1/namespaces/ns1/pods/p1/log", requestInfo{APIPrefix: "api", Version: "v1", Namespace: "ns1", Resource: "pods", Name: "p1", Subresource: "log", Verb: "get"}},
		{"GET", "/api/v1/namespaces", requestInfo{APIPrefix: "api", Version: "v1", Resource: "namespaces", Verb: "list"}},
		{"DELETE", "/api/v1/namespaces/gen", requestInfo{APIPrefix: "api", Version: "v1", Resource: "namespaces", Name: "gen", Verb: "delete"}},
		{"PUT", "/api/v1/namespaces/gen/finalize", requestInfo{APIPrefix: "api", Version: "v1", Resource: "namespaces", Name: "gen", Subresource: "finalize", Verb: "update"}},
		{"PATCH", "/api/v1/namespaces/gen/status", requestInfo{APIPrefix: "api", Version: "v1", Resource: "namespaces", Name: "gen", Subresource: "status", Verb: "patch"}},
		{"GET", "/api/v1/namespaces/gen/configmaps", requestInfo{APIPrefix: "api", Version: "v1", Namespace: "gen", Resource: "configmaps", Verb: "list"}},
		{"PUT", "/apis/apps/v1/namespaces/ns/deployments/web/scale", requestInfo{APIPrefix: "apis", Group: "apps", Version: "v1", Namespace: "ns", Resource: "deployments", Name: "web", Subresource: "scale", Verb: "update"}},
		{"DELETE", "/apis/apps/v1/namespaces/ns/deployments", requestInfo{APIPrefix: "apis", Group: "apps", Version: "v1", Namespace: "ns", Resource: "deployments", Verb: "deletecollection"}},
		{"GET", "/api/v1/watch/namespaces/ns/pods", requestInfo{APIPrefix: "api", Version: "v1", Namespace: "ns", Resource: "pods", Verb: "watch"}},
	}
	for _, c := range cases {
		got, ok := parseRequestInfo(httptest.NewRequest(c.method, c.path, nil))
		if !ok || got != c.want {
			t.Errorf("%s %s = %+v (%v), want %+v", c.method, c.path, got, ok, c.want)
		}
	}
}

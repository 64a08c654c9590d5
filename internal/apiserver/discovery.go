package apiserver

import (
	"encoding/json"
	"mime"
	"net/http"
	"strings"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-sh/skiff/internal/registry"
)

// aggregatedMedia is the Content-Type kubectl needs to read aggregated
// discovery; with plain JSON it would read the body as legacy discovery.
const aggregatedMedia = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"

// reviewGroup is served without storage: access reviews are answered at once.
const reviewGroup = "authorization.k8s.io"

// discoveryDocs are the discovery documents, built once at start-up.
type discoveryDocs struct {
	core        []byte // aggregated, /api
	groupsAggr  []byte // aggregated, /apis
	apiVersions metav1.APIVersions
	groupList   metav1.APIGroupList
	groups      []metav1.APIGroup
	resources   map[string]*metav1.APIResourceList // by group/version path
}

type subresource struct {
	name  string
	kind  metav1.GroupVersionKind
	verbs []string
}

func subresourcesOf(r *registry.Resource) []subresource {
	gvk := metav1.GroupVersionKind{Group: r.Group, Version: r.Version, Kind: r.Kind}
	var subs []subresource
	if r.Status {
		subs = append(subs, subresource{"status", gvk, []string{"get", "patch", "update"}})
	}
	if r.Scale != nil {
		subs = append(subs, subresource{"scale", metav1.GroupVersionKind{Group: "autoscaling", Version: "v1", Kind: "Scale"}, []string{"get", "patch", "update"}})
	}
	switch r.GroupResource().String() {
	case "pods":
		subs = append(subs,
			subresource{"attach", metav1.GroupVersionKind{Version: "v1", Kind: "PodAttachOptions"}, []string{"create", "get"}},
			subresource{"binding", metav1.GroupVersionKind{Version: "v1", Kind: "Binding"}, []string{"create"}},
			subresource{"eviction", metav1.GroupVersionKind{Group: "policy", Version: "v1", Kind: "Eviction"}, []string{"create"}},
			subresource{"exec", metav1.GroupVersionKind{Version: "v1", Kind: "PodExecOptions"}, []string{"create", "get"}},
			subresource{"log", metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}, []string{"get"}},
			subresource{"portforward", metav1.GroupVersionKind{Version: "v1", Kind: "PodPortForwardOptions"}, []string{"create", "get"}},
		)
	case "namespaces":
		subs = append(subs, subresource{"finalize", gvk, []string{"update"}})
	case "serviceaccounts":
		subs = append(subs, subresource{"token", metav1.GroupVersionKind{Group: "authentication.k8s.io", Version: "v1", Kind: "TokenRequest"}, []string{"create"}})
	}
	return subs
}

func buildDiscovery(resources []*registry.Resource) *discoveryDocs {
	d := &discoveryDocs{resources: map[string]*metav1.APIResourceList{}}
	type gv struct{ group, version string }
	var order []gv
	byGV := map[gv][]*registry.Resource{}
	for _, r := range resources {
		k := gv{r.Group, r.Version}
		if _, ok := byGV[k]; !ok {
			order = append(order, k)
		}
		byGV[k] = append(byGV[k], r)
	}
	order = append(order, gv{reviewGroup, "v1"})

	var aggrGroups []apidiscoveryv2.APIGroupDiscovery
	var core apidiscoveryv2.APIGroupDiscovery
	for _, k := range order {
		gvPath := k.version
		if k.group != "" {
			gvPath = k.group + "/" + k.version
		}
		list := &metav1.APIResourceList{TypeMeta: metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"}, GroupVersion: gvPath}
		var aggr []apidiscoveryv2.APIResourceDiscovery
		for _, r := range byGV[k] {
			list.APIResources = append(list.APIResources, legacyResource(r))
			for _, sub := range subresourcesOf(r) {
				list.APIResources = append(list.APIResources, metav1.APIResource{
					Name: r.Resource + "/" + sub.name, Namespaced: r.Namespaced,
					Group: sub.kind.Group, Version: sub.kind.Version, Kind: sub.kind.Kind, Verbs: sub.verbs,
				})
			}
			aggr = append(aggr, aggregatedResource(r))
		}
		if k.group == reviewGroup {
			for _, name := range []string{"selfsubjectaccessreviews", "selfsubjectrulesreviews"} {
				kind := map[string]string{"selfsubjectaccessreviews": "SelfSubjectAccessReview", "selfsubjectrulesreviews": "SelfSubjectRulesReview"}[name]
				list.APIResources = append(list.APIResources, metav1.APIResource{Name: name, SingularName: strings.ToLower(kind), Kind: kind, Verbs: []string{"create"}})
				aggr = append(aggr, apidiscoveryv2.APIResourceDiscovery{
					Resource: name, SingularResource: strings.ToLower(kind), Scope: apidiscoveryv2.ScopeCluster,
					ResponseKind: &metav1.GroupVersionKind{Group: reviewGroup, Version: "v1", Kind: kind}, Verbs: []string{"create"},
				})
			}
		}
		d.resources[gvPath] = list
		version := apidiscoveryv2.APIVersionDiscovery{Version: k.version, Resources: aggr, Freshness: apidiscoveryv2.DiscoveryFreshnessCurrent}
		if k.group == "" {
			core = apidiscoveryv2.APIGroupDiscovery{Versions: []apidiscoveryv2.APIVersionDiscovery{version}}
			continue
		}
		// One version per group today; a second version would join here.
		aggrGroups = append(aggrGroups, apidiscoveryv2.APIGroupDiscovery{ObjectMeta: metav1.ObjectMeta{Name: k.group}, Versions: []apidiscoveryv2.APIVersionDiscovery{version}})
		g := metav1.APIGroup{
			TypeMeta:         metav1.TypeMeta{Kind: "APIGroup", APIVersion: "v1"},
			Name:             k.group,
			Versions:         []metav1.GroupVersionForDiscovery{{GroupVersion: gvPath, Version: k.version}},
			PreferredVersion: metav1.GroupVersionForDiscovery{GroupVersion: gvPath, Version: k.version},
		}
		d.groups = append(d.groups, g)
	}
	d.core = mustJSON(apidiscoveryv2.APIGroupDiscoveryList{TypeMeta: metav1.TypeMeta{Kind: "APIGroupDiscoveryList", APIVersion: "apidiscovery.k8s.io/v2"}, Items: []apidiscoveryv2.APIGroupDiscovery{core}})
	d.groupsAggr = mustJSON(apidiscoveryv2.APIGroupDiscoveryList{TypeMeta: metav1.TypeMeta{Kind: "APIGroupDiscoveryList", APIVersion: "apidiscovery.k8s.io/v2"}, Items: aggrGroups})
	d.apiVersions = metav1.APIVersions{TypeMeta: metav1.TypeMeta{Kind: "APIVersions"}, Versions: []string{"v1"},
		ServerAddressByClientCIDRs: []metav1.ServerAddressByClientCIDR{{ClientCIDR: "0.0.0.0/0"}}}
	d.groupList = metav1.APIGroupList{TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"}, Groups: d.groups}
	return d
}

func legacyResource(r *registry.Resource) metav1.APIResource {
	return metav1.APIResource{
		Name: r.Resource, SingularName: r.SingularName, Namespaced: r.Namespaced, Kind: r.Kind,
		Verbs: r.Verbs(), ShortNames: r.ShortNames, Categories: r.Categories,
	}
}

func aggregatedResource(r *registry.Resource) apidiscoveryv2.APIResourceDiscovery {
	scope := apidiscoveryv2.ScopeCluster
	if r.Namespaced {
		scope = apidiscoveryv2.ScopeNamespace
	}
	out := apidiscoveryv2.APIResourceDiscovery{
		Resource: r.Resource, SingularResource: r.SingularName, Scope: scope,
		ResponseKind: &metav1.GroupVersionKind{Group: r.Group, Version: r.Version, Kind: r.Kind},
		Verbs:        r.Verbs(), ShortNames: r.ShortNames, Categories: r.Categories,
	}
	for _, sub := range subresourcesOf(r) {
		k := sub.kind
		out.Subresources = append(out.Subresources, apidiscoveryv2.APISubresourceDiscovery{Subresource: sub.name, ResponseKind: &k, Verbs: sub.verbs})
	}
	return out
}

func mustJSON(v any) []byte {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return data
}

// wantsAggregated reports whether the Accept header asks for aggregated
// discovery before anything else.
func wantsAggregated(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		if mt == mediaJSON && params["g"] == "apidiscovery.k8s.io" && params["v"] == "v2" && params["as"] == "APIGroupDiscoveryList" {
			return true
		}
		if mt == mediaJSON || mt == "*/*" {
			return false
		}
	}
	return false
}

func writeAggregated(w http.ResponseWriter, body []byte) {
	w.Header().Set("Content-Type", aggregatedMedia)
	w.Header().Set("Vary", "Accept")
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}

// serveAPI handles /api and everything under it.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	switch strings.TrimSuffix(r.URL.Path, "/") {
	case "/api":
		if wantsAggregated(r) {
			writeAggregated(w, s.discovery.core)
			return
		}
		v := s.discovery.apiVersions
		v.ServerAddressByClientCIDRs = []metav1.ServerAddressByClientCIDR{{ClientCIDR: "0.0.0.0/0", ServerAddress: r.Host}}
		writeJSON(w, http.StatusOK, v)
		return
	case "/api/v1":
		writeJSON(w, http.StatusOK, s.discovery.resources["v1"])
		return
	}
	s.serveResource(w, r)
}

// serveAPIs handles /apis and everything under it.
func (s *Server) serveAPIs(w http.ResponseWriter, r *http.Request) {
	parts := splitPath(r.URL.Path)
	switch len(parts) {
	case 1:
		if wantsAggregated(r) {
			writeAggregated(w, s.discovery.groupsAggr)
			return
		}
		writeJSON(w, http.StatusOK, s.discovery.groupList)
		return
	case 2:
		for _, g := range s.discovery.groups {
			if g.Name == parts[1] {
				writeJSON(w, http.StatusOK, g)
				return
			}
		}
		s.writeError(w, r, notFoundPath())
		return
	case 3:
		if list, ok := s.discovery.resources[parts[1]+"/"+parts[2]]; ok {
			writeJSON(w, http.StatusOK, list)
			return
		}
		s.writeError(w, r, notFoundPath())
		return
	}
	if parts[1] == reviewGroup {
		s.serveReview(w, r, parts)
		return
	}
	s.serveResource(w, r)
}

package openapi

import (
	"reflect"
	"slices"
	"strings"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiff-sh/skiff/internal/registry"
)

// route is one URL path of the API with the operations it answers. It is
// the common model behind the v2 and v3 documents.
type route struct {
	path string
	// params apply to every operation of the path: path parameters and pretty.
	params []param
	ops    []operation
}

// operation is one HTTP method on a route.
type operation struct {
	method      string // lower case, as OpenAPI spells the keys
	id          string // operationId, e.g. patchAppsV1NamespacedDeployment
	description string
	tag         string // e.g. apps_v1
	// action is x-kubernetes-action: get, list, post, put, patch, delete or
	// deletecollection, the verbs kube-apiserver writes there.
	action string
	// gvk is x-kubernetes-group-version-kind; zero for the discovery path.
	gvk    schema.GroupVersionKind
	params []param
	// body is the type of the request body, with the media types accepted.
	body          reflect.Type
	bodyMedia     []string
	responses     []response
	responseMedia []string
}

// response is one status code an operation may answer.
type response struct {
	code        int
	description string
	body        reflect.Type // nil: no body
}

// param is a parameter of an operation or route.
type param struct {
	name        string
	in          string // path or query
	description string
	typ         string // string, integer or boolean
	required    bool
}

// Media types of request and response bodies. Skiff answers JSON only, and
// takes the patch types kubectl sends (not server-side apply).
var (
	jsonMedia  = []string{"application/json"}
	listMedia  = []string{"application/json", "application/json;stream=watch"}
	anyMedia   = []string{"*/*"}
	patchMedia = []string{"application/json-patch+json", "application/merge-patch+json", "application/strategic-merge-patch+json"}
)

// Types of bodies common to all resources.
var (
	statusType     = reflect.TypeFor[metav1.Status]()
	deleteOptsType = reflect.TypeFor[metav1.DeleteOptions]()
	patchType      = reflect.TypeFor[metav1.Patch]()
	scaleType      = reflect.TypeFor[autoscalingv1.Scale]()
	scaleGVK       = autoscalingv1.SchemeGroupVersion.WithKind("Scale")
)

// Parameters. The write parameters are what kubectl's query-param verifier
// looks for (fieldValidation on PATCH) before it lets the server validate.
var (
	paramPretty = param{name: "pretty", in: "query", typ: "string",
		description: "If 'true', the output is indented."}
	paramNamespace = param{name: "namespace", in: "path", typ: "string", required: true,
		description: "object name and auth scope, such as for teams and projects"}

	paramDryRun = param{name: "dryRun", in: "query", typ: "string",
		description: "When present, the request is checked but nothing is persisted. The only valid value is All."}
	paramFieldManager = param{name: "fieldManager", in: "query", typ: "string",
		description: "Name of the actor making the change, recorded in managedFields. At most 128 printable characters."}
	paramFieldValidation = param{name: "fieldValidation", in: "query", typ: "string",
		description: "How the server treats unknown or duplicate fields in the request body: Ignore drops them silently, Warn drops them and sends a warning header for each (the default), Strict fails the request with a BadRequest error naming them."}

	paramLabelSelector = param{name: "labelSelector", in: "query", typ: "string",
		description: "A selector to restrict the list of returned objects by their labels. Defaults to everything."}
	paramFieldSelector = param{name: "fieldSelector", in: "query", typ: "string",
		description: "A selector to restrict the list of returned objects by their fields. Defaults to everything."}
	paramLimit = param{name: "limit", in: "query", typ: "integer",
		description: "The most objects to return in one list call; the server sets metadata.continue when more remain."}
	paramContinue = param{name: "continue", in: "query", typ: "string",
		description: "The continue token of a previous list call with the same parameters, to fetch the next chunk."}
	paramResourceVersion = param{name: "resourceVersion", in: "query", typ: "string",
		description: "Which version of the collection to serve, or where a watch starts. Unset: the most recent."}
	paramResourceVersionMatch = param{name: "resourceVersionMatch", in: "query", typ: "string",
		description: "How resourceVersion applies to a list: Exact or NotOlderThan."}
	paramTimeoutSeconds = param{name: "timeoutSeconds", in: "query", typ: "integer",
		description: "How long a list or watch call may take, in seconds."}
	paramWatch = param{name: "watch", in: "query", typ: "boolean",
		description: "Stream changes to the described objects as add, update and remove events instead of listing them."}
	paramAllowWatchBookmarks = param{name: "allowWatchBookmarks", in: "query", typ: "boolean",
		description: "Ask for BOOKMARK events in a watch. The server may send them or not."}
	paramSendInitialEvents = param{name: "sendInitialEvents", in: "query", typ: "boolean",
		description: "Start a watch with synthetic ADDED events for the current objects, followed by a bookmark annotated k8s.io/initial-events-end."}

	paramGracePeriodSeconds = param{name: "gracePeriodSeconds", in: "query", typ: "integer",
		description: "Seconds before the object is deleted; zero deletes at once. Unset: the type's default."}
	paramOrphanDependents = param{name: "orphanDependents", in: "query", typ: "boolean",
		description: "Deprecated: use propagationPolicy. Whether dependents are orphaned."}
	paramPropagationPolicy = param{name: "propagationPolicy", in: "query", typ: "string",
		description: "Whether and how the garbage collector deletes dependents: Orphan, Background or Foreground."}
)

var (
	writeParams  = []param{paramDryRun, paramFieldManager, paramFieldValidation}
	listParams   = []param{paramAllowWatchBookmarks, paramContinue, paramFieldSelector, paramLabelSelector, paramLimit, paramResourceVersion, paramResourceVersionMatch, paramSendInitialEvents, paramTimeoutSeconds, paramWatch}
	deleteParams = []param{paramDryRun, paramGracePeriodSeconds, paramOrphanDependents, paramPropagationPolicy}
	// deletecollection takes the list selectors and the delete options.
	deleteCollectionParams = []param{paramContinue, paramDryRun, paramFieldSelector, paramGracePeriodSeconds, paramLabelSelector, paramLimit, paramOrphanDependents, paramPropagationPolicy, paramResourceVersion, paramResourceVersionMatch, paramSendInitialEvents, paramTimeoutSeconds}
)

// groupVersionPath is the key of gv in the /openapi/v3 index and the prefix
// of its REST paths without the leading slash: api/v1, apis/apps/v1.
func groupVersionPath(gv schema.GroupVersion) string {
	if gv.Group == "" {
		return "api/" + gv.Version
	}
	return "apis/" + gv.Group + "/" + gv.Version
}

// discoveryRoute is GET /apis/<group>/<version>/, the legacy discovery
// document of one group version.
func discoveryRoute(gv schema.GroupVersion) route {
	n := newNamer(gv)
	return route{
		path: "/" + groupVersionPath(gv) + "/",
		ops: []operation{{
			method:        "get",
			id:            "get" + n.gv + "APIResources",
			description:   "get available resources",
			tag:           n.tag,
			responses:     ok(reflect.TypeFor[metav1.APIResourceList]()),
			responseMedia: jsonMedia,
		}},
	}
}

// resourceRoutes returns the paths of one resource as kube-apiserver lays
// them out: the collection (and, for namespaced resources, the list across
// namespaces), the item, and its status and scale subresources. Only the
// verbs the resource answers get operations.
func resourceRoutes(r *registry.Resource) []route {
	p := resourcePaths{
		r:      r,
		n:      newNamer(r.GroupVersion()),
		gvk:    r.GroupVersionKind(),
		obj:    deref(reflect.TypeOf(r.New())),
		list:   listType(r),
		prefix: "/" + groupVersionPath(r.GroupVersion()),
		params: []param{paramPretty},
	}
	p.base = p.prefix
	if r.Namespaced {
		p.base += "/namespaces/{namespace}"
		p.scope = "Namespaced"
		p.params = []param{paramNamespace, paramPretty}
	}

	candidates := []route{p.collection()}
	if r.Namespaced {
		candidates = append(candidates, p.allNamespaces())
	}
	candidates = append(candidates, p.item("", p.obj, p.gvk, p.r.Kind))
	if r.Status {
		candidates = append(candidates, p.item("status", p.obj, p.gvk, p.r.Kind))
	}
	if r.Scale != nil {
		candidates = append(candidates, p.item("scale", scaleType, scaleGVK, "Scale"))
	}
	var routes []route
	for _, rt := range candidates {
		if len(rt.ops) > 0 {
			routes = append(routes, rt)
		}
	}
	return routes
}

// resourcePaths builds the routes of one resource.
type resourcePaths struct {
	r         *registry.Resource
	n         namer
	gvk       schema.GroupVersionKind
	obj, list reflect.Type // list is nil for create-only resources
	prefix    string       // /apis/apps/v1
	base      string       // prefix, then /namespaces/{namespace} if namespaced
	scope     string       // "Namespaced" or "", as operation IDs spell it
	params    []param      // parameters of the collection path
}

func (p *resourcePaths) can(verb string) bool {
	if p.list == nil && (verb == "list" || verb == "deletecollection") {
		return false
	}
	return slices.Contains(p.r.Verbs(), verb)
}

// op starts an operation whose ID is verb, group version, scope, kind and
// suffix, like readAppsV1NamespacedDeploymentStatus.
func (p *resourcePaths) op(method, verb, action, suffix string, params []param) operation {
	return operation{
		method: method, id: verb + p.n.gv + p.scope + p.r.Kind + suffix, tag: p.n.tag,
		action: action, gvk: p.gvk, params: params, responseMedia: jsonMedia,
	}
}

func (p *resourcePaths) listOp() operation {
	o := p.op("get", "list", "list", "", listParams)
	o.description = "list or watch objects of kind " + p.r.Kind
	o.responses = ok(p.list)
	o.responseMedia = listMedia
	return o
}

// collection is <base>/<resource>: list, create and deletecollection.
func (p *resourcePaths) collection() route {
	rt := route{path: p.base + "/" + p.r.Resource, params: p.params}
	if p.can("list") {
		rt.ops = append(rt.ops, p.listOp())
	}
	if p.can("create") {
		o := p.op("post", "create", "post", "", writeParams)
		o.description = "create " + article(p.r.Kind)
		o.body, o.bodyMedia = p.obj, anyMedia
		o.responses = []response{{200, "OK", p.obj}, {201, "Created", p.obj}, {202, "Accepted", p.obj}, unauthorized}
		rt.ops = append(rt.ops, o)
	}
	if p.can("deletecollection") {
		o := p.op("delete", "delete", "deletecollection", "", deleteCollectionParams)
		o.id = "delete" + p.n.gv + "Collection" + p.scope + p.r.Kind
		o.description = "delete collection of " + p.r.Kind
		o.body, o.bodyMedia = deleteOptsType, anyMedia
		o.responses = ok(statusType)
		rt.ops = append(rt.ops, o)
	}
	return rt
}

// allNamespaces is <prefix>/<resource>, the list across namespaces.
func (p *resourcePaths) allNamespaces() route {
	rt := route{path: p.prefix + "/" + p.r.Resource, params: []param{paramPretty}}
	if p.can("list") {
		o := p.listOp()
		o.id = "list" + p.n.gv + p.r.Kind + "ForAllNamespaces"
		rt.ops = append(rt.ops, o)
	}
	return rt
}

// item is <base>/<resource>/{name} when sub is "", else the subresource
// below it, whose body is t tagged with gvk. Both read, replace and patch;
// the item is also deleted.
func (p *resourcePaths) item(sub string, t reflect.Type, gvk schema.GroupVersionKind, nameOf string) route {
	rt := route{
		path:   p.base + "/" + p.r.Resource + "/{name}",
		params: append([]param{{name: "name", in: "path", typ: "string", required: true, description: "name of the " + nameOf}}, p.params...),
	}
	// what the operations act on, in descriptions and operation IDs
	what, suffix := "the specified "+p.r.Kind, ""
	if sub != "" {
		rt.path += "/" + sub
		what = sub + " of the specified " + p.r.Kind
		suffix = strings.ToUpper(sub[:1]) + sub[1:]
	}
	op := func(method, verb, action string, params []param) operation {
		o := p.op(method, verb, action, suffix, params)
		o.gvk = gvk
		return o
	}
	if p.can("get") {
		o := op("get", "read", "get", nil)
		o.description = "read " + what
		o.responses = ok(t)
		rt.ops = append(rt.ops, o)
	}
	if p.can("update") {
		o := op("put", "replace", "put", writeParams)
		o.description = "replace " + what
		o.body, o.bodyMedia = t, anyMedia
		o.responses = []response{{200, "OK", t}, {201, "Created", t}, unauthorized}
		rt.ops = append(rt.ops, o)
	}
	if p.can("patch") {
		o := op("patch", "patch", "patch", writeParams)
		o.description = "partially update " + what
		o.body, o.bodyMedia = patchType, patchMedia
		o.responses = []response{{200, "OK", t}, {201, "Created", t}, unauthorized}
		rt.ops = append(rt.ops, o)
	}
	if sub == "" && p.can("delete") {
		o := op("delete", "delete", "delete", deleteParams)
		o.description = "delete " + article(p.r.Kind)
		o.body, o.bodyMedia = deleteOptsType, anyMedia
		o.responses = []response{{200, "OK", statusType}, {202, "Accepted", statusType}, unauthorized}
		rt.ops = append(rt.ops, o)
	}
	return rt
}

// listType is the Go type of the resource's list, or nil for resources
// without one (create-only reviews).
func listType(r *registry.Resource) reflect.Type {
	if r.NewList == nil {
		return nil
	}
	list := r.NewList()
	if list == nil {
		return nil
	}
	return deref(reflect.TypeOf(list))
}

var unauthorized = response{code: 401, description: "Unauthorized"}

// ok is the response list of a read: 200 with t, or 401.
func ok(t reflect.Type) []response {
	return []response{{200, "OK", t}, unauthorized}
}

func article(kind string) string {
	if strings.ContainsRune("AEIOU", rune(kind[0])) {
		return "an " + kind
	}
	return "a " + kind
}

// namer builds operation IDs and tags the way kube-apiserver does:
// listCoreV1NamespacedPod, patchAppsV1NamespacedDeploymentScale, tag apps_v1.
type namer struct {
	gv  string // CoreV1, AppsV1, RbacAuthorizationV1
	tag string // core_v1, apps_v1, rbacAuthorization_v1
}

func newNamer(gv schema.GroupVersion) namer {
	group := strings.TrimSuffix(gv.Group, ".k8s.io")
	if group == "" {
		group = "core"
	}
	var camel strings.Builder
	for _, part := range strings.FieldsFunc(group, func(r rune) bool { return r == '.' || r == '-' }) {
		camel.WriteString(strings.ToUpper(part[:1]) + part[1:])
	}
	upper := camel.String()
	version := strings.ToUpper(gv.Version[:1]) + gv.Version[1:]
	return namer{
		gv:  upper + version,
		tag: strings.ToLower(upper[:1]) + upper[1:] + "_" + gv.Version,
	}
}

package openapi

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"

	openapi_v2 "github.com/google/gnostic-models/openapiv2"
	openapi_v3 "github.com/google/gnostic-models/openapiv3"
	"google.golang.org/protobuf/proto"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiff-sh/skiff/internal/registry"
	"github.com/skiff-sh/skiff/internal/version"
)

// info is the info object of both documents.
type info struct {
	Title   string `json:"title"`
	Version string `json:"version"`
}

// docInfo names the API and its version, the same as /version reports.
func docInfo() info {
	return info{Title: "Kubernetes", Version: version.Info().GitVersion}
}

// pathItem holds the operations of one path. O and P are the operation and
// parameter types of the OpenAPI version.
type pathItem[O, P any] struct {
	Get        *O  `json:"get,omitempty"`
	Put        *O  `json:"put,omitempty"`
	Post       *O  `json:"post,omitempty"`
	Delete     *O  `json:"delete,omitempty"`
	Patch      *O  `json:"patch,omitempty"`
	Parameters []P `json:"parameters,omitempty"`
}

func (p *pathItem[O, P]) set(method string, op *O) {
	switch method {
	case "get":
		p.Get = op
	case "put":
		p.Put = op
	case "post":
		p.Post = op
	case "delete":
		p.Delete = op
	case "patch":
		p.Patch = op
	default:
		panic("openapi: unknown method " + method)
	}
}

// bearerToken is the security scheme kube-apiserver declares.
var bearerToken = map[string]any{
	"type": "apiKey", "name": "authorization", "in": "header",
	"description": "Bearer Token authentication",
}

var security = []map[string][]string{{"BearerToken": {}}}

// tagKinds marks the object, list and scale types of resources with the GVKs
// they are served as, as x-kubernetes-group-version-kind on their schemas.
func tagKinds(b *builder, resources []*registry.Resource) {
	for _, r := range resources {
		b.tagKind(reflect.TypeOf(r.New()), r.GroupVersionKind())
		if list := listType(r); list != nil {
			b.tagKind(list, r.GroupVersion().WithKind(list.Name()))
		}
		if r.Scale != nil {
			b.tagKind(scaleType, scaleGVK)
		}
	}
}

// routesOf returns the routes of resources, all in group version gv.
func routesOf(gv schema.GroupVersion, resources []*registry.Resource) []route {
	routes := []route{discoveryRoute(gv)}
	for _, r := range resources {
		routes = append(routes, resourceRoutes(r)...)
	}
	return routes
}

// OpenAPI v3.

type v3Document struct {
	OpenAPI    string                                     `json:"openapi"`
	Info       info                                       `json:"info"`
	Paths      map[string]*pathItem[v3Operation, v3Param] `json:"paths"`
	Components v3Components                               `json:"components"`
	Security   []map[string][]string                      `json:"security"`
}

type v3Components struct {
	Schemas         map[string]*jsonSchema `json:"schemas"`
	SecuritySchemes map[string]any         `json:"securitySchemes"`
}

type v3Operation struct {
	Tags        []string               `json:"tags,omitempty"`
	Description string                 `json:"description,omitempty"`
	OperationID string                 `json:"operationId"`
	Parameters  []v3Param              `json:"parameters,omitempty"`
	RequestBody *v3Body                `json:"requestBody,omitempty"`
	Responses   map[string]*v3Response `json:"responses"`
	Action      string                 `json:"x-kubernetes-action,omitempty"`
	GVK         *groupVersionKind      `json:"x-kubernetes-group-version-kind,omitempty"`
}

type v3Param struct {
	Name        string      `json:"name"`
	In          string      `json:"in"`
	Description string      `json:"description,omitempty"`
	Required    bool        `json:"required,omitempty"`
	Schema      *jsonSchema `json:"schema"`
}

type v3Body struct {
	Content map[string]v3Media `json:"content"`
}

type v3Response struct {
	Description string             `json:"description"`
	Content     map[string]v3Media `json:"content,omitempty"`
}

type v3Media struct {
	Schema *jsonSchema `json:"schema"`
}

// buildV3 renders the OpenAPI v3 document of group version gv, whose
// resources are given. Schemas of kinds are tagged with their GVKs wherever
// they appear, so all served resources are passed too.
func buildV3(gv schema.GroupVersion, resources, all []*registry.Resource) ([]byte, error) {
	b := newBuilder(dialectV3)
	tagKinds(b, all)
	doc := v3Document{
		OpenAPI: "3.0.0",
		Info:    docInfo(),
		Paths:   map[string]*pathItem[v3Operation, v3Param]{},
		Components: v3Components{
			Schemas:         b.defs,
			SecuritySchemes: map[string]any{"BearerToken": bearerToken},
		},
		Security: security,
	}
	for _, rt := range routesOf(gv, resources) {
		item := &pathItem[v3Operation, v3Param]{Parameters: v3Params(rt.params)}
		for _, op := range rt.ops {
			item.set(op.method, b.v3Operation(op))
		}
		doc.Paths[rt.path] = item
	}
	return marshal(doc)
}

func (b *builder) v3Operation(op operation) *v3Operation {
	o := &v3Operation{
		Tags:        []string{op.tag},
		Description: op.description,
		OperationID: op.id,
		Parameters:  v3Params(op.params),
		Responses:   map[string]*v3Response{},
		Action:      op.action,
		GVK:         gvkExtension(op.gvk),
	}
	if op.body != nil {
		o.RequestBody = &v3Body{Content: b.v3Content(op.body, op.bodyMedia)}
	}
	for _, r := range op.responses {
		resp := &v3Response{Description: r.description}
		if r.body != nil {
			resp.Content = b.v3Content(r.body, op.responseMedia)
		}
		o.Responses[strconv.Itoa(r.code)] = resp
	}
	return o
}

func (b *builder) v3Content(t reflect.Type, media []string) map[string]v3Media {
	content := map[string]v3Media{}
	for _, m := range media {
		content[m] = v3Media{Schema: b.ref(t)}
	}
	return content
}

func v3Params(params []param) []v3Param {
	var out []v3Param
	for _, p := range params {
		out = append(out, v3Param{
			Name: p.name, In: p.in, Description: p.description, Required: p.required,
			Schema: &jsonSchema{Type: p.typ},
		})
	}
	return out
}

// Swagger 2.0.

type v2Document struct {
	Swagger             string                                     `json:"swagger"`
	Info                info                                       `json:"info"`
	Paths               map[string]*pathItem[v2Operation, v2Param] `json:"paths"`
	Definitions         map[string]*jsonSchema                     `json:"definitions"`
	SecurityDefinitions map[string]any                             `json:"securityDefinitions"`
	Security            []map[string][]string                      `json:"security"`
}

type v2Operation struct {
	Description string                 `json:"description,omitempty"`
	Consumes    []string               `json:"consumes,omitempty"`
	Produces    []string               `json:"produces,omitempty"`
	Schemes     []string               `json:"schemes,omitempty"`
	Tags        []string               `json:"tags,omitempty"`
	OperationID string                 `json:"operationId"`
	Parameters  []v2Param              `json:"parameters,omitempty"`
	Responses   map[string]*v2Response `json:"responses"`
	Action      string                 `json:"x-kubernetes-action,omitempty"`
	GVK         *groupVersionKind      `json:"x-kubernetes-group-version-kind,omitempty"`
}

// v2Param is a query or path parameter (with type) or the body (with schema).
type v2Param struct {
	Name        string      `json:"name"`
	In          string      `json:"in"`
	Description string      `json:"description,omitempty"`
	Required    bool        `json:"required,omitempty"`
	Type        string      `json:"type,omitempty"`
	Schema      *jsonSchema `json:"schema,omitempty"`
}

type v2Response struct {
	Description string      `json:"description"`
	Schema      *jsonSchema `json:"schema,omitempty"`
}

// buildV2 renders the Swagger 2.0 document of all resources, by group
// version.
func buildV2(groups []*group) ([]byte, error) {
	b := newBuilder(dialectV2)
	doc := v2Document{
		Swagger:             "2.0",
		Info:                docInfo(),
		Paths:               map[string]*pathItem[v2Operation, v2Param]{},
		Definitions:         b.defs,
		SecurityDefinitions: map[string]any{"BearerToken": bearerToken},
		Security:            security,
	}
	for _, g := range groups {
		tagKinds(b, g.resources)
	}
	for _, g := range groups {
		for _, rt := range routesOf(g.gv, g.resources) {
			item := &pathItem[v2Operation, v2Param]{Parameters: v2Params(rt.params)}
			for _, op := range rt.ops {
				item.set(op.method, b.v2Operation(op))
			}
			doc.Paths[rt.path] = item
		}
	}
	return marshal(doc)
}

func (b *builder) v2Operation(op operation) *v2Operation {
	o := &v2Operation{
		Description: op.description,
		Consumes:    op.bodyMedia,
		Produces:    op.responseMedia,
		Schemes:     []string{"https"},
		Tags:        []string{op.tag},
		OperationID: op.id,
		Parameters:  v2Params(op.params),
		Responses:   map[string]*v2Response{},
		Action:      op.action,
		GVK:         gvkExtension(op.gvk),
	}
	if op.body != nil {
		o.Parameters = append([]v2Param{{
			Name: "body", In: "body", Required: op.method != "delete", Schema: b.ref(op.body),
		}}, o.Parameters...)
	}
	for _, r := range op.responses {
		resp := &v2Response{Description: r.description}
		if r.body != nil {
			resp.Schema = b.ref(r.body)
		}
		o.Responses[strconv.Itoa(r.code)] = resp
	}
	return o
}

func v2Params(params []param) []v2Param {
	var out []v2Param
	for _, p := range params {
		out = append(out, v2Param{Name: p.name, In: p.in, Description: p.description, Required: p.required, Type: p.typ})
	}
	return out
}

// v2Protobuf converts a Swagger 2.0 JSON document to the gnostic protobuf
// kubectl asks for, as kube-openapi does.
func v2Protobuf(doc []byte) ([]byte, error) {
	parsed, err := openapi_v2.ParseDocument(doc)
	if err != nil {
		return nil, fmt.Errorf("parse openapi v2 document: %w", err)
	}
	return proto.Marshal(parsed)
}

// v3Protobuf converts an OpenAPI v3 JSON document to gnostic protobuf.
func v3Protobuf(doc []byte) ([]byte, error) {
	parsed, err := openapi_v3.ParseDocument(doc)
	if err != nil {
		return nil, fmt.Errorf("parse openapi v3 document: %w", err)
	}
	return proto.Marshal(parsed)
}

func gvkExtension(gvk schema.GroupVersionKind) *groupVersionKind {
	if gvk.Empty() {
		return nil
	}
	g := toGVK(gvk)
	return &g
}

func marshal(doc any) ([]byte, error) {
	data, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("marshal openapi document: %w", err)
	}
	return data, nil
}

package openapi

import (
	"reflect"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// jsonSchema is the part of JSON Schema that the generated documents use. The
// same type serves OpenAPI v3 (components.schemas) and Swagger 2.0
// (definitions); the builder's dialect decides which fields it fills.
type jsonSchema struct {
	Ref                  string                 `json:"$ref,omitempty"`
	Description          string                 `json:"description,omitempty"`
	Type                 string                 `json:"type,omitempty"`
	Format               string                 `json:"format,omitempty"`
	Required             []string               `json:"required,omitempty"`
	Items                *jsonSchema            `json:"items,omitempty"`
	Properties           map[string]*jsonSchema `json:"properties,omitempty"`
	AdditionalProperties *jsonSchema            `json:"additionalProperties,omitempty"`
	AllOf                []*jsonSchema          `json:"allOf,omitempty"`
	OneOf                []*jsonSchema          `json:"oneOf,omitempty"`

	IntOrString           bool               `json:"x-kubernetes-int-or-string,omitempty"`
	PreserveUnknownFields bool               `json:"x-kubernetes-preserve-unknown-fields,omitempty"`
	PatchStrategy         string             `json:"x-kubernetes-patch-strategy,omitempty"`
	PatchMergeKey         string             `json:"x-kubernetes-patch-merge-key,omitempty"`
	GroupVersionKinds     []groupVersionKind `json:"x-kubernetes-group-version-kind,omitempty"`
}

// groupVersionKind is the value of x-kubernetes-group-version-kind. All three keys are
// always written (group "" for the core group): kubectl explain compares
// these objects with deep equality.
type groupVersionKind struct {
	Group   string `json:"group"`
	Kind    string `json:"kind"`
	Version string `json:"version"`
}

func toGVK(gvk schema.GroupVersionKind) groupVersionKind {
	return groupVersionKind{Group: gvk.Group, Kind: gvk.Kind, Version: gvk.Version}
}

// dialect is how one OpenAPI version spells references and unions.
type dialect struct {
	// refPrefix comes before a definition's name in $ref.
	refPrefix string
	// v3 allows oneOf, and needs allOf around a $ref that has siblings:
	// OpenAPI 3.0 ignores keywords next to $ref, Swagger 2.0 tools read them.
	v3 bool
}

var (
	dialectV3 = dialect{refPrefix: "#/components/schemas/", v3: true}
	dialectV2 = dialect{refPrefix: "#/definitions/"}
)

// The methods apimachinery's special types (Time, Quantity, IntOrString,
// Duration...) implement to tell openapi-gen how they look on the wire.
type (
	openAPITyper      interface{ OpenAPISchemaType() []string }
	openAPIFormatter  interface{ OpenAPISchemaFormat() string }
	openAPIV3OneOfer  interface{ OpenAPIV3OneOfTypes() []string }
	swaggerDocumenter interface{ SwaggerDoc() map[string]string }
)

var (
	typerType      = reflect.TypeFor[openAPITyper]()
	formatterType  = reflect.TypeFor[openAPIFormatter]()
	oneOferType    = reflect.TypeFor[openAPIV3OneOfer]()
	documenterType = reflect.TypeFor[swaggerDocumenter]()
)

// skiffAPIs is the package path prefix of skiff's own API types.
const skiffAPIs = "github.com/skiff-sh/skiff/pkg/apis/"

// specialDocs describes the apimachinery types that marshal themselves and
// have no SwaggerDoc method.
var specialDocs = map[reflect.Type]string{
	reflect.TypeFor[resource.Quantity](): "Quantity is a fixed-point number: a string of a decimal number with an optional suffix, " +
		"binary (Ki, Mi, Gi, Ti, Pi, Ei), decimal (m, k, M, G, T, P, E) or an exponent (e3, E6), such as 100m, 1.5Gi or 2e3. " +
		"Plain JSON numbers are accepted too. It is written back in canonical form.",
	reflect.TypeFor[intstr.IntOrString](): "IntOrString holds either an integer or a string, such as a port number or a port name.",
	reflect.TypeFor[metav1.Time]():        "Time is a timestamp in RFC 3339 form with second precision, in UTC.",
	reflect.TypeFor[metav1.MicroTime]():   "MicroTime is a timestamp in RFC 3339 form with microsecond precision, in UTC.",
	reflect.TypeFor[metav1.Duration]():    "Duration is a length of time in Go's time.Duration string form, such as 300ms or 1h15m.",
	reflect.TypeFor[runtime.RawExtension](): "RawExtension holds an embedded object of any kind, as JSON, " +
		"usually with its own apiVersion and kind.",
}

// builder turns Go types into schemas by reflection, collecting a named
// definition for every struct type it meets.
type builder struct {
	d    dialect
	defs map[string]*jsonSchema
	// kinds tags the definitions of top-level kinds with their GVKs.
	kinds map[reflect.Type][]groupVersionKind
}

func newBuilder(d dialect) *builder {
	return &builder{d: d, defs: map[string]*jsonSchema{}, kinds: map[reflect.Type][]groupVersionKind{}}
}

// tagKind records that t is served as gvk. Call it before t is first used.
func (b *builder) tagKind(t reflect.Type, gvk schema.GroupVersionKind) {
	t = deref(t)
	if !slices.Contains(b.kinds[t], toGVK(gvk)) {
		b.kinds[t] = append(b.kinds[t], toGVK(gvk))
	}
}

// ref returns a reference to the definition of struct type t, adding it and
// everything it reaches on first use.
func (b *builder) ref(t reflect.Type) *jsonSchema {
	t = deref(t)
	name := definitionName(t)
	if _, ok := b.defs[name]; !ok {
		def := &jsonSchema{}
		// Placed before it is filled in, so that recursive types end in a
		// reference to themselves instead of looping.
		b.defs[name] = def
		b.fillDefinition(def, t)
	}
	return &jsonSchema{Ref: b.d.refPrefix + name}
}

// fillDefinition describes named struct type t: its fields, or its wire
// form if it marshals itself.
func (b *builder) fillDefinition(def *jsonSchema, t reflect.Type) {
	def.Description = swaggerDoc(t)[""]
	if def.Description == "" {
		def.Description = specialDocs[t]
	}
	def.GroupVersionKinds = b.kinds[t]
	if t.Implements(typerType) {
		b.fillSpecial(def, t)
		return
	}
	def.Type = "object"
	b.addFields(def, t)
}

// fillSpecial describes a type that marshals itself, from the methods it
// offers openapi-gen.
func (b *builder) fillSpecial(def *jsonSchema, t reflect.Type) {
	zero := reflect.Zero(t).Interface()
	types := zero.(openAPITyper).OpenAPISchemaType()
	var format string
	if t.Implements(formatterType) {
		format = zero.(openAPIFormatter).OpenAPISchemaFormat()
	}
	var oneOf []string
	if t.Implements(oneOferType) {
		oneOf = zero.(openAPIV3OneOfer).OpenAPIV3OneOfTypes()
	}
	if len(types) == 0 {
		// Any JSON value.
		def.PreserveUnknownFields = true
		return
	}
	// Quantity and IntOrString: a string or a number. Structural schemas
	// (CRDs, server-side apply) mark this with x-kubernetes-int-or-string.
	def.IntOrString = slices.Contains(oneOf, "string") && (slices.Contains(oneOf, "integer") || slices.Contains(oneOf, "number"))
	if b.d.v3 && len(oneOf) > 0 {
		for _, typ := range oneOf {
			def.OneOf = append(def.OneOf, &jsonSchema{Type: typ})
		}
		def.Format = format
		return
	}
	def.Type = types[0]
	def.Format = format
}

// addFields adds the JSON fields of struct t to def, flattening embedded
// structs the way encoding/json does.
func (b *builder) addFields(def *jsonSchema, t reflect.Type) {
	docs := swaggerDoc(t)
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, hasTag := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" && !hasTag {
			continue
		}
		if f.Anonymous && name == "" {
			if ft := deref(f.Type); ft.Kind() == reflect.Struct {
				b.addFields(def, ft)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		prop := b.field(f.Type, docs[name], f.Tag.Get("patchStrategy"), f.Tag.Get("patchMergeKey"))
		if def.Properties == nil {
			def.Properties = map[string]*jsonSchema{}
		}
		def.Properties[name] = prop
		if required(f.Type, opts) {
			def.Required = append(def.Required, name)
		}
	}
}

// required guesses whether a field is required. The real source of truth,
// the +optional comment, is not visible at run time; fields that are always
// written (no omitempty) and are not pointers come closest to it.
func required(t reflect.Type, opts string) bool {
	for _, o := range strings.Split(opts, ",") {
		if o == "omitempty" || o == "omitzero" {
			return false
		}
	}
	return t.Kind() != reflect.Pointer && t.Kind() != reflect.Interface
}

// field is the schema of a struct field of type t, with its description and
// strategic-merge-patch metadata.
func (b *builder) field(t reflect.Type, description, patchStrategy, patchMergeKey string) *jsonSchema {
	s := b.schema(t)
	if s.Ref != "" && (description != "" || patchStrategy != "" || patchMergeKey != "") {
		if b.d.v3 {
			s = &jsonSchema{AllOf: []*jsonSchema{s}}
		} else {
			s = &jsonSchema{Ref: s.Ref}
		}
	}
	s.Description = description
	s.PatchStrategy = patchStrategy
	s.PatchMergeKey = patchMergeKey
	return s
}

// schema returns a fresh schema for a value of type t: a reference for
// struct types, inline for everything else.
func (b *builder) schema(t reflect.Type) *jsonSchema {
	t = deref(t)
	switch t.Kind() {
	case reflect.Bool:
		return &jsonSchema{Type: "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Uint8, reflect.Uint16:
		return &jsonSchema{Type: "integer", Format: "int32"}
	case reflect.Int64, reflect.Uint, reflect.Uint32, reflect.Uint64:
		return &jsonSchema{Type: "integer", Format: "int64"}
	case reflect.Float32:
		return &jsonSchema{Type: "number", Format: "float"}
	case reflect.Float64:
		return &jsonSchema{Type: "number", Format: "double"}
	case reflect.String:
		return &jsonSchema{Type: "string"}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return &jsonSchema{Type: "string", Format: "byte"}
		}
		return &jsonSchema{Type: "array", Items: b.schema(t.Elem())}
	case reflect.Map:
		return &jsonSchema{Type: "object", AdditionalProperties: b.schema(t.Elem())}
	case reflect.Struct:
		if t.Name() == "" {
			s := &jsonSchema{Type: "object"}
			b.addFields(s, t)
			return s
		}
		return b.ref(t)
	default:
		// Interfaces and anything else: any JSON value.
		return &jsonSchema{PreserveUnknownFields: true}
	}
}

// definitionName is the name upstream Kubernetes gives a Go type in its
// documents: the package path with its domain reversed, dotted, and the type
// name, e.g. io.k8s.api.core.v1.Pod. Skiff's own API types are named as if
// they lived in k8s.io/api, which is where Kubernetes kept PodPreset.
func definitionName(t reflect.Type) string {
	pkg := t.PkgPath()
	if rest, ok := strings.CutPrefix(pkg, skiffAPIs); ok {
		return "io.k8s.api." + strings.ReplaceAll(rest, "/", ".") + "." + t.Name()
	}
	host, path, _ := strings.Cut(pkg, "/")
	parts := strings.Split(host, ".")
	slices.Reverse(parts)
	name := strings.Join(parts, ".")
	if path != "" {
		name += "." + strings.ReplaceAll(path, "/", ".")
	}
	return name + "." + t.Name()
}

// swaggerDoc returns the documentation k8s.io/api types carry in their
// generated SwaggerDoc methods: "" describes the type, other keys are JSON
// field names. Types without one (like skiff's PodPreset) have none.
func swaggerDoc(t reflect.Type) map[string]string {
	if !t.Implements(documenterType) {
		return nil
	}
	return reflect.Zero(t).Interface().(swaggerDocumenter).SwaggerDoc()
}

func deref(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

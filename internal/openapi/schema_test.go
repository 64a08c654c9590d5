package openapi

import (
	"encoding/json"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	settingsv1alpha1 "github.com/skiff-sh/skiff/pkg/apis/settings/v1alpha1"
)

type testEmbedded struct {
	Embedded int32 `json:"embedded,omitempty"`
}

type testItem struct {
	Key string `json:"key"`
}

type testTree struct {
	Children []testTree `json:"children,omitempty"`
	Parent   *testTree  `json:"parent,omitempty"`
}

type testObject struct {
	testEmbedded `json:",inline"`
	Name         string             `json:"name"`
	Optional     *string            `json:"optional,omitempty"`
	Data         []byte             `json:"data,omitempty"`
	Labels       map[string]string  `json:"labels,omitempty"`
	Items        []testItem         `json:"items" patchStrategy:"merge" patchMergeKey:"key"`
	Port         intstr.IntOrString `json:"port,omitempty"`
	Size         *resource.Quantity `json:"size,omitempty"`
	When         metav1.Time        `json:"when,omitempty"`
	Tree         testTree           `json:"tree,omitempty"`
	Anything     any                `json:"anything,omitempty"`
	Ignored      string             `json:"-"`
	unexported   string
}

// The unexported field is there to be skipped.
var _ = testObject{unexported: ""}

func (testObject) SwaggerDoc() map[string]string {
	return map[string]string{"": "An object for tests.", "name": "The name.", "tree": "A tree."}
}

// schemaJSON builds the definition of t and returns it and the other
// definitions as JSON values, for comparison with literals.
func schemaJSON(t *testing.T, d dialect, typ reflect.Type) (map[string]any, map[string]any) {
	t.Helper()
	b := newBuilder(d)
	b.ref(typ)
	data, err := json.Marshal(b.defs)
	if err != nil {
		t.Fatal(err)
	}
	var defs map[string]any
	if err := json.Unmarshal(data, &defs); err != nil {
		t.Fatal(err)
	}
	def, _ := defs[definitionName(typ)].(map[string]any)
	return def, defs
}

func fromJSON(t *testing.T, s string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestSchemasFollowJSONEncodingOfGoTypes(t *testing.T) {
	const prefix = "com.github.skiff-sh.skiff.internal.openapi."
	for _, tc := range []struct {
		name    string
		d       dialect
		want    map[string]string // property → its schema as JSON
		others  map[string]string // other definitions → JSON
		require []any
	}{{
		name: "v3",
		d:    dialectV3,
		want: map[string]string{
			"embedded": `{"type":"integer","format":"int32"}`,
			"name":     `{"type":"string","description":"The name."}`,
			"optional": `{"type":"string"}`,
			"data":     `{"type":"string","format":"byte"}`,
			"labels":   `{"type":"object","additionalProperties":{"type":"string"}}`,
			"items": `{"type":"array","items":{"$ref":"#/components/schemas/` + prefix + `testItem"},
				"x-kubernetes-patch-strategy":"merge","x-kubernetes-patch-merge-key":"key"}`,
			"port":     `{"$ref":"#/components/schemas/io.k8s.apimachinery.pkg.util.intstr.IntOrString"}`,
			"size":     `{"$ref":"#/components/schemas/io.k8s.apimachinery.pkg.api.resource.Quantity"}`,
			"when":     `{"$ref":"#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.Time"}`,
			"tree":     `{"description":"A tree.","allOf":[{"$ref":"#/components/schemas/` + prefix + `testTree"}]}`,
			"anything": `{"x-kubernetes-preserve-unknown-fields":true}`,
		},
		others: map[string]string{
			prefix + "testTree": `{"type":"object","properties":{
				"children":{"type":"array","items":{"$ref":"#/components/schemas/` + prefix + `testTree"}},
				"parent":{"$ref":"#/components/schemas/` + prefix + `testTree"}}}`,
			"io.k8s.apimachinery.pkg.apis.meta.v1.Time": `{"description":"` + specialDocs[reflect.TypeFor[metav1.Time]()] + `",
				"type":"string","format":"date-time"}`,
			"io.k8s.apimachinery.pkg.util.intstr.IntOrString": `{"description":"` + specialDocs[reflect.TypeFor[intstr.IntOrString]()] + `",
				"format":"int-or-string","oneOf":[{"type":"integer"},{"type":"string"}],"x-kubernetes-int-or-string":true}`,
		},
		require: []any{"name", "items"},
	}, {
		name: "v2",
		d:    dialectV2,
		want: map[string]string{
			"port": `{"$ref":"#/definitions/io.k8s.apimachinery.pkg.util.intstr.IntOrString"}`,
			"tree": `{"description":"A tree.","$ref":"#/definitions/` + prefix + `testTree"}`,
		},
		others: map[string]string{
			"io.k8s.apimachinery.pkg.util.intstr.IntOrString": `{"description":"` + specialDocs[reflect.TypeFor[intstr.IntOrString]()] + `",
				"type":"string","format":"int-or-string","x-kubernetes-int-or-string":true}`,
		},
		require: []any{"name", "items"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			def, defs := schemaJSON(t, tc.d, reflect.TypeFor[testObject]())
			if def["description"] != "An object for tests." || def["type"] != "object" {
				t.Errorf("definition: %v", def)
			}
			props, _ := def["properties"].(map[string]any)
			for name, want := range tc.want {
				if got := props[name]; !reflect.DeepEqual(got, fromJSON(t, want)) {
					t.Errorf("property %s:\n got %v\nwant %s", name, got, want)
				}
			}
			for _, name := range []string{"Ignored", "-", "unexported", "testEmbedded"} {
				if _, ok := props[name]; ok {
					t.Errorf("property %s should not be there", name)
				}
			}
			if !reflect.DeepEqual(def["required"], tc.require) {
				t.Errorf("required %v, want %v", def["required"], tc.require)
			}
			for name, want := range tc.others {
				if got := defs[name]; !reflect.DeepEqual(got, fromJSON(t, want)) {
					t.Errorf("definition %s:\n got %v\nwant %s", name, got, want)
				}
			}
		})
	}
}

func TestDefinitionNamesMatchUpstream(t *testing.T) {
	for typ, want := range map[reflect.Type]string{
		reflect.TypeFor[corev1.Pod]():                 "io.k8s.api.core.v1.Pod",
		reflect.TypeFor[metav1.ObjectMeta]():          "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
		reflect.TypeFor[resource.Quantity]():          "io.k8s.apimachinery.pkg.api.resource.Quantity",
		reflect.TypeFor[settingsv1alpha1.PodPreset](): "io.k8s.api.settings.v1alpha1.PodPreset",
	} {
		if got := definitionName(typ); got != want {
			t.Errorf("%v: %s, want %s", typ, got, want)
		}
	}
}

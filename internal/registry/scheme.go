package registry

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	settingsv1alpha1 "github.com/skiff-sh/skiff/pkg/apis/settings/v1alpha1"
)

// Scheme knows every type skiff serves or reads from request bodies.
var Scheme = newScheme()

func newScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := settingsv1alpha1.AddToScheme(s); err != nil {
		panic(err)
	}
	// meta.k8s.io/v1 types (Table, PartialObjectMetadata, Status) for
	// responses and for DeleteOptions in request bodies.
	metav1.AddToGroupVersion(s, schema.GroupVersion{Group: "meta.k8s.io", Version: "v1"})
	s.AddKnownTypes(schema.GroupVersion{Group: "meta.k8s.io", Version: "v1"},
		&metav1.Table{}, &metav1.PartialObjectMetadata{}, &metav1.PartialObjectMetadataList{})
	return s
}

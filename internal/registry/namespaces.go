package registry

import (
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	corev1 "k8s.io/api/core/v1"
)

func namespaces() *Resource {
	return &Resource{
		GroupVersionResource: schema.GroupVersionResource{Group: "", Version: "v1", Resource: "namespaces"},
		Kind:                 "Namespace",
		SingularName:         "namespace",
		Namespaced:           false,
		ShortNames:           []string{"ns"},
		Categories:           nil,
		New:                  func() runtime.Object { return &corev1.Namespace{} },
		NewList:              func() runtime.Object { return &corev1.NamespaceList{} },
		Status:               true,
	}
}

package registry

import (
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	corev1 "k8s.io/api/core/v1"
)

func endpoints() *Resource {
	return &Resource{
		GroupVersionResource: schema.GroupVersionResource{Group: "", Version: "v1", Resource: "endpoints"},
		Kind:                 "Endpoints",
		SingularName:         "endpoints",
		Namespaced:           true,
		ShortNames:           []string{"ep"},
		Categories:           nil,
		New:                  func() runtime.Object { return &corev1.Endpoints{} },
		NewList:              func() runtime.Object { return &corev1.EndpointsList{} },
		Status:               false,
	}
}

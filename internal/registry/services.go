package registry

import (
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	corev1 "k8s.io/api/core/v1"
)

func services() *Resource {
	return &Resource{
		GroupVersionResource: schema.GroupVersionResource{Group: "", Version: "v1", Resource: "services"},
		Kind:                 "Service",
		SingularName:         "service",
		Namespaced:           true,
		ShortNames:           []string{"svc"},
		Categories:           []string{"all"},
		New:                  func() runtime.Object { return &corev1.Service{} },
		NewList:              func() runtime.Object { return &corev1.ServiceList{} },
		Status:               true,
	}
}

package registry

import (
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	corev1 "k8s.io/api/core/v1"
)

func configmaps() *Resource {
	return &Resource{
		GroupVersionResource: schema.GroupVersionResource{Group: "", Version: "v1", Resource: "configmaps"},
		Kind:                 "ConfigMap",
		SingularName:         "configmap",
		Namespaced:           true,
		ShortNames:           []string{"cm"},
		Categories:           nil,
		New:                  func() runtime.Object { return &corev1.ConfigMap{} },
		NewList:              func() runtime.Object { return &corev1.ConfigMapList{} },
		Status:               false,
	}
}

package registry

import (
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	corev1 "k8s.io/api/core/v1"
)

func pods() *Resource {
	return &Resource{
		GroupVersionResource: schema.GroupVersionResource{Group: "", Version: "v1", Resource: "pods"},
		Kind:                 "Pod",
		SingularName:         "pod",
		Namespaced:           true,
		ShortNames:           []string{"po"},
		Categories:           []string{"all"},
		New:                  func() runtime.Object { return &corev1.Pod{} },
		NewList:              func() runtime.Object { return &corev1.PodList{} },
		Status:               true,
	}
}

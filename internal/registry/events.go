package registry

import (
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	corev1 "k8s.io/api/core/v1"
)

func events() *Resource {
	return &Resource{
		GroupVersionResource: schema.GroupVersionResource{Group: "", Version: "v1", Resource: "events"},
		Kind:                 "Event",
		SingularName:         "event",
		Namespaced:           true,
		ShortNames:           []string{"ev"},
		Categories:           nil,
		New:                  func() runtime.Object { return &corev1.Event{} },
		NewList:              func() runtime.Object { return &corev1.EventList{} },
		Status:               false,
	}
}

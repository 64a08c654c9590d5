package registry

import (
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	eventsv1 "k8s.io/api/events/v1"
)

func eventsV1() *Resource {
	return &Resource{
		GroupVersionResource: schema.GroupVersionResource{Group: "events.k8s.io", Version: "v1", Resource: "events"},
		Kind:                 "Event",
		SingularName:         "event",
		Namespaced:           true,
		ShortNames:           []string{"ev"},
		Categories:           nil,
		New:                  func() runtime.Object { return &eventsv1.Event{} },
		NewList:              func() runtime.Object { return &eventsv1.EventList{} },
		Status:               false,
	}
}

package registry

import (
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	discoveryv1 "k8s.io/api/discovery/v1"
)

func endpointslices() *Resource {
	return &Resource{
		GroupVersionResource: schema.GroupVersionResource{Group: "discovery.k8s.io", Version: "v1", Resource: "endpointslices"},
		Kind:                 "EndpointSlice",
		SingularName:         "endpointslice",
		Namespaced:           true,
		ShortNames:           nil,
		Categories:           nil,
		New:                  func() runtime.Object { return &discoveryv1.EndpointSlice{} },
		NewList:              func() runtime.Object { return &discoveryv1.EndpointSliceList{} },
		Status:               false,
	}
}

package registry

import (
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	coordinationv1 "k8s.io/api/coordination/v1"
)

func leases() *Resource {
	return &Resource{
		GroupVersionResource: schema.GroupVersionResource{Group: "coordination.k8s.io", Version: "v1", Resource: "leases"},
		Kind:                 "Lease",
		SingularName:         "lease",
		Namespaced:           true,
		ShortNames:           nil,
		Categories:           nil,
		New:                  func() runtime.Object { return &coordinationv1.Lease{} },
		NewList:              func() runtime.Object { return &coordinationv1.LeaseList{} },
		Status:               false,
	}
}

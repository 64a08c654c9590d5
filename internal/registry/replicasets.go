package registry

import (
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	appsv1 "k8s.io/api/apps/v1"
)

func replicasets() *Resource {
	return &Resource{
		GroupVersionResource: schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "replicasets"},
		Kind:                 "ReplicaSet",
		SingularName:         "replicaset",
		Namespaced:           true,
		ShortNames:           []string{"rs"},
		Categories:           []string{"all"},
		New:                  func() runtime.Object { return &appsv1.ReplicaSet{} },
		NewList:              func() runtime.Object { return &appsv1.ReplicaSetList{} },
		Status:               true,
	}
}

package registry

import (
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	appsv1 "k8s.io/api/apps/v1"
)

func statefulsets() *Resource {
	return &Resource{
		GroupVersionResource: schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "statefulsets"},
		Kind:                 "StatefulSet",
		SingularName:         "statefulset",
		Namespaced:           true,
		ShortNames:           []string{"sts"},
		Categories:           []string{"all"},
		New:                  func() runtime.Object { return &appsv1.StatefulSet{} },
		NewList:              func() runtime.Object { return &appsv1.StatefulSetList{} },
		Status:               true,
	}
}

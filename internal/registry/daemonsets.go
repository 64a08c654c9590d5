package registry

import (
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	appsv1 "k8s.io/api/apps/v1"
)

func daemonsets() *Resource {
	return &Resource{
		GroupVersionResource: schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "daemonsets"},
		Kind:                 "DaemonSet",
		SingularName:         "daemonset",
		Namespaced:           true,
		ShortNames:           []string{"ds"},
		Categories:           []string{"all"},
		New:                  func() runtime.Object { return &appsv1.DaemonSet{} },
		NewList:              func() runtime.Object { return &appsv1.DaemonSetList{} },
		Status:               true,
	}
}

package registry

import (
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	appsv1 "k8s.io/api/apps/v1"
)

func controllerrevisions() *Resource {
	return &Resource{
		GroupVersionResource: schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "controllerrevisions"},
		Kind:                 "ControllerRevision",
		SingularName:         "controllerrevision",
		Namespaced:           true,
		ShortNames:           nil,
		Categories:           nil,
		New:                  func() runtime.Object { return &appsv1.ControllerRevision{} },
		NewList:              func() runtime.Object { return &appsv1.ControllerRevisionList{} },
		Status:               false,
	}
}

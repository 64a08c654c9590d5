package registry

import (
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	appsv1 "k8s.io/api/apps/v1"
)

func deployments() *Resource {
	return &Resource{
		GroupVersionResource: schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"},
		Kind:                 "Deployment",
		SingularName:         "deployment",
		Namespaced:           true,
		ShortNames:           []string{"deploy"},
		Categories:           []string{"all"},
		New:                  func() runtime.Object { return &appsv1.Deployment{} },
		NewList:              func() runtime.Object { return &appsv1.DeploymentList{} },
		Status:               true,
	}
}

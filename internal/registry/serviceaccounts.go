package registry

import (
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	corev1 "k8s.io/api/core/v1"
)

func serviceaccounts() *Resource {
	return &Resource{
		GroupVersionResource: schema.GroupVersionResource{Group: "", Version: "v1", Resource: "serviceaccounts"},
		Kind:                 "ServiceAccount",
		SingularName:         "serviceaccount",
		Namespaced:           true,
		ShortNames:           []string{"sa"},
		Categories:           nil,
		New:                  func() runtime.Object { return &corev1.ServiceAccount{} },
		NewList:              func() runtime.Object { return &corev1.ServiceAccountList{} },
		Status:               false,
	}
}

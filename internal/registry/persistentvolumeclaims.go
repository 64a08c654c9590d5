package registry

import (
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	corev1 "k8s.io/api/core/v1"
)

func persistentvolumeclaims() *Resource {
	return &Resource{
		GroupVersionResource: schema.GroupVersionResource{Group: "", Version: "v1", Resource: "persistentvolumeclaims"},
		Kind:                 "PersistentVolumeClaim",
		SingularName:         "persistentvolumeclaim",
		Namespaced:           true,
		ShortNames:           []string{"pvc"},
		Categories:           nil,
		New:                  func() runtime.Object { return &corev1.PersistentVolumeClaim{} },
		NewList:              func() runtime.Object { return &corev1.PersistentVolumeClaimList{} },
		Status:               true,
	}
}

package registry

import (
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	corev1 "k8s.io/api/core/v1"
)

func persistentvolumes() *Resource {
	return &Resource{
		GroupVersionResource: schema.GroupVersionResource{Group: "", Version: "v1", Resource: "persistentvolumes"},
		Kind:                 "PersistentVolume",
		SingularName:         "persistentvolume",
		Namespaced:           false,
		ShortNames:           []string{"pv"},
		Categories:           nil,
		New:                  func() runtime.Object { return &corev1.PersistentVolume{} },
		NewList:              func() runtime.Object { return &corev1.PersistentVolumeList{} },
		Status:               true,
	}
}

package registry

import (
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	storagev1 "k8s.io/api/storage/v1"
)

func storageclasses() *Resource {
	return &Resource{
		GroupVersionResource: schema.GroupVersionResource{Group: "storage.k8s.io", Version: "v1", Resource: "storageclasses"},
		Kind:                 "StorageClass",
		SingularName:         "storageclass",
		Namespaced:           false,
		ShortNames:           []string{"sc"},
		Categories:           nil,
		New:                  func() runtime.Object { return &storagev1.StorageClass{} },
		NewList:              func() runtime.Object { return &storagev1.StorageClassList{} },
		Status:               false,
	}
}

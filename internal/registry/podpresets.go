package registry

import (
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	settingsv1alpha1 "github.com/skiff-sh/skiff/pkg/apis/settings/v1alpha1"
)

func podpresets() *Resource {
	return &Resource{
		GroupVersionResource: schema.GroupVersionResource{Group: "settings.k8s.io", Version: "v1alpha1", Resource: "podpresets"},
		Kind:                 "PodPreset",
		SingularName:         "podpreset",
		Namespaced:           true,
		ShortNames:           nil,
		Categories:           nil,
		New:                  func() runtime.Object { return &settingsv1alpha1.PodPreset{} },
		NewList:              func() runtime.Object { return &settingsv1alpha1.PodPresetList{} },
		Status:               false,
	}
}

package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupName is the API group of PodPreset.
const GroupName = "settings.k8s.io"

// SchemeGroupVersion is the group and version of the types here.
var SchemeGroupVersion = schema.GroupVersion{Group: GroupName, Version: "v1alpha1"}

// AddToScheme registers PodPreset and PodPresetList.
func AddToScheme(s *runtime.Scheme) error {
	s.AddKnownTypes(SchemeGroupVersion, &PodPreset{}, &PodPresetList{})
	metav1.AddToGroupVersion(s, SchemeGroupVersion)
	return nil
}

// PodPreset is a policy resource that defines additional runtime
// requirements for a Pod.
type PodPreset struct {
	metav1.TypeMeta `json:",inline"`
	// Standard object's metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +optional
	Spec PodPresetSpec `json:"spec,omitempty"`
}

// PodPresetSpec is a description of a pod preset.
type PodPresetSpec struct {
	// Selector is a label query over a set of resources, in this case pods.
	// Required.
	Selector metav1.LabelSelector `json:"selector,omitempty"`

	// Env defines the collection of EnvVar to inject into containers.
	// +optional
	Env []corev1.EnvVar `json:"env,omitempty"`
	// EnvFrom defines the collection of EnvFromSource to inject into containers.
	// +optional
	EnvFrom []corev1.EnvFromSource `json:"envFrom,omitempty"`
	// Volumes defines the collection of Volume to inject into the pod.
	// +optional
	Volumes []corev1.Volume `json:"volumes,omitempty" patchStrategy:"merge" patchMergeKey:"name"`
	// VolumeMounts defines the collection of VolumeMount to inject into containers.
	// +optional
	VolumeMounts []corev1.VolumeMount `json:"volumeMounts,omitempty"`
}

// PodPresetList is a list of PodPreset objects.
type PodPresetList struct {
	metav1.TypeMeta `json:",inline"`
	// Standard list metadata.
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`

	// Items is a list of schema objects.
	Items []PodPreset `json:"items"`
}

// SwaggerDoc describes PodPreset for OpenAPI and kubectl explain.
func (PodPreset) SwaggerDoc() map[string]string {
	return map[string]string{
		"":         "PodPreset is a policy resource that defines additional runtime requirements for a Pod.",
		"metadata": "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
		"spec":     "Spec defines what the preset injects into matching pods.",
	}
}

// SwaggerDoc describes PodPresetSpec for OpenAPI and kubectl explain.
func (PodPresetSpec) SwaggerDoc() map[string]string {
	return map[string]string{
		"":             "PodPresetSpec is a description of a pod preset.",
		"selector":     "Selector is a label query over a set of resources, in this case pods. Required.",
		"env":          "Env defines the collection of EnvVar to inject into containers.",
		"envFrom":      "EnvFrom defines the collection of EnvFromSource to inject into containers.",
		"volumes":      "Volumes defines the collection of Volume to inject into the pod.",
		"volumeMounts": "VolumeMounts defines the collection of VolumeMount to inject into containers.",
	}
}

// SwaggerDoc describes PodPresetList for OpenAPI and kubectl explain.
func (PodPresetList) SwaggerDoc() map[string]string {
	return map[string]string{
		"":         "PodPresetList is a list of PodPreset objects.",
		"metadata": "Standard list metadata.",
		"items":    "Items is a list of schema objects.",
	}
}

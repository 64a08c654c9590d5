package registry

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

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
		Default:              func(obj runtime.Object) { defaultPodPreset(obj.(*settingsv1alpha1.PodPreset)) },
		Validate: func(obj runtime.Object) field.ErrorList {
			return validatePodPreset(obj.(*settingsv1alpha1.PodPreset))
		},
		ValidateUpdate: func(obj, old runtime.Object) field.ErrorList {
			return validateObjectMetaUpdate(&obj.(*settingsv1alpha1.PodPreset).ObjectMeta, &old.(*settingsv1alpha1.PodPreset).ObjectMeta)
		},
		Table: &Table{
			Columns: []metav1.TableColumnDefinition{ageColumn()},
			Cells: func(obj runtime.Object) []any {
				return []any{age(obj.(*settingsv1alpha1.PodPreset).CreationTimestamp)}
			},
		},
	}
}

// defaultPodPreset gives what a preset injects the defaults it would get in
// a pod, so injecting it leaves nothing for pod defaulting to change.
func defaultPodPreset(pp *settingsv1alpha1.PodPreset) {
	for i := range pp.Spec.Volumes {
		defaultVolumeSource(&pp.Spec.Volumes[i].VolumeSource)
	}
	for i := range pp.Spec.Env {
		if vf := pp.Spec.Env[i].ValueFrom; vf != nil {
			defaultFieldSelector(vf.FieldRef)
		}
	}
}

// validatePodPreset checks the selector and what the preset injects; its
// mounts may only refer to its own volumes.
func validatePodPreset(pp *settingsv1alpha1.PodPreset) field.ErrorList {
	specPath := field.NewPath("spec")
	spec := &pp.Spec
	errs := validateObjectMeta(&pp.ObjectMeta, true, nameIsDNSSubdomain)
	errs = append(errs, metav1validation.ValidateLabelSelector(&spec.Selector, metav1validation.LabelSelectorValidationOptions{}, specPath.Child("selector"))...)
	if spec.Env == nil && spec.EnvFrom == nil && spec.VolumeMounts == nil && spec.Volumes == nil {
		errs = append(errs, field.Required(specPath.Child("volumes", "env", "envFrom", "volumeMounts"), "must specify at least one"))
	}
	vols, volErrs := validateVolumes(spec.Volumes, specPath.Child("volumes"))
	errs = append(errs, volErrs...)
	errs = append(errs, validateEnv(spec.Env, specPath.Child("env"))...)
	errs = append(errs, validateEnvFrom(spec.EnvFrom, specPath.Child("envFrom"))...)
	errs = append(errs, validateVolumeMounts(&corev1.Container{VolumeMounts: spec.VolumeMounts}, vols, specPath.Child("volumeMounts"))...)
	return errs
}

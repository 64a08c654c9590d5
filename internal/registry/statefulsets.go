package registry

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func statefulsets() *Resource {
	return &Resource{
		GroupVersionResource: schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "statefulsets"},
		Kind:                 "StatefulSet",
		SingularName:         "statefulset",
		Namespaced:           true,
		ShortNames:           []string{"sts"},
		Categories:           []string{"all"},
		New:                  func() runtime.Object { return &appsv1.StatefulSet{} },
		NewList:              func() runtime.Object { return &appsv1.StatefulSetList{} },
		Status:               true,
		ValidateStatus:       validateStatefulSetStatus,
		Scale: &ScaleAccess{
			Get: func(obj runtime.Object) (int32, int32, string) {
				s := obj.(*appsv1.StatefulSet)
				return replicasOrDefault(s.Spec.Replicas), s.Status.Replicas, scaleSelector(s.Spec.Selector)
			},
			SetReplicas: func(obj runtime.Object, replicas int32) {
				obj.(*appsv1.StatefulSet).Spec.Replicas = &replicas
			},
		},
		Default: func(obj runtime.Object) { defaultStatefulSet(obj.(*appsv1.StatefulSet)) },
		PrepareForCreate: func(obj runtime.Object) {
			obj.(*appsv1.StatefulSet).Status = appsv1.StatefulSetStatus{}
		},
		Validate: func(obj runtime.Object) field.ErrorList { return validateStatefulSet(obj.(*appsv1.StatefulSet)) },
		ValidateUpdate: func(obj, old runtime.Object) field.ErrorList {
			return validateStatefulSetUpdate(obj.(*appsv1.StatefulSet), old.(*appsv1.StatefulSet))
		},
		Table: &Table{
			Columns: []metav1.TableColumnDefinition{
				{Name: "Ready", Type: "string", Description: "Ready pods out of the desired replicas."},
				ageColumn(), colContainers, colImages,
			},
			Cells: func(obj runtime.Object) []any {
				s := obj.(*appsv1.StatefulSet)
				names, images := cellContainers(&s.Spec.Template.Spec)
				return []any{
					fmt.Sprintf("%d/%d", s.Status.ReadyReplicas, replicasOrDefault(s.Spec.Replicas)),
					age(s.CreationTimestamp),
					names, images,
				}
			},
		},
	}
}

// defaultStatefulSet applies apps/v1 defaulting: one replica started in
// order, rolling updates from partition 0, ten revisions kept, claims
// retained, and the core defaults of the claim templates.
func defaultStatefulSet(s *appsv1.StatefulSet) {
	spec := &s.Spec
	if spec.PodManagementPolicy == "" {
		spec.PodManagementPolicy = appsv1.OrderedReadyPodManagement
	}
	// As in Kubernetes, rollingUpdate is only made up when the type was
	// left empty; an explicit RollingUpdate without it stays without.
	if spec.UpdateStrategy.Type == "" {
		spec.UpdateStrategy.Type = appsv1.RollingUpdateStatefulSetStrategyType
		if spec.UpdateStrategy.RollingUpdate == nil {
			spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateStatefulSetStrategy{}
		}
	}
	if ru := spec.UpdateStrategy.RollingUpdate; spec.UpdateStrategy.Type == appsv1.RollingUpdateStatefulSetStrategyType &&
		ru != nil && ru.Partition == nil {
		ru.Partition = new(int32(0))
	}
	if spec.PersistentVolumeClaimRetentionPolicy == nil {
		spec.PersistentVolumeClaimRetentionPolicy = &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{}
	}
	if p := spec.PersistentVolumeClaimRetentionPolicy; p.WhenDeleted == "" {
		p.WhenDeleted = appsv1.RetainPersistentVolumeClaimRetentionPolicyType
	}
	if p := spec.PersistentVolumeClaimRetentionPolicy; p.WhenScaled == "" {
		p.WhenScaled = appsv1.RetainPersistentVolumeClaimRetentionPolicyType
	}
	if spec.Replicas == nil {
		spec.Replicas = new(int32(1))
	}
	if spec.RevisionHistoryLimit == nil {
		spec.RevisionHistoryLimit = new(int32(10))
	}
	for i := range spec.VolumeClaimTemplates {
		claim := &spec.VolumeClaimTemplates[i]
		defaultPersistentVolumeClaimSpec(&claim.Spec)
		if claim.Status.Phase == "" {
			claim.Status.Phase = corev1.ClaimPending
		}
	}
	defaultPodSpec(&spec.Template.Spec)
}

// validateStatefulSet checks a StatefulSet on create and update.
func validateStatefulSet(s *appsv1.StatefulSet) field.ErrorList {
	// Pod names are <name>-<ordinal> and double as hostnames, so the name
	// must be a DNS label.
	errs := validateObjectMeta(&s.ObjectMeta, true, nameIsDNSLabel)
	spec, path := &s.Spec, field.NewPath("spec")

	switch spec.PodManagementPolicy {
	case "":
		errs = append(errs, field.Required(path.Child("podManagementPolicy"), ""))
	case appsv1.OrderedReadyPodManagement, appsv1.ParallelPodManagement:
	default:
		errs = append(errs, field.Invalid(path.Child("podManagementPolicy"), spec.PodManagementPolicy,
			fmt.Sprintf("must be '%s' or '%s'", appsv1.OrderedReadyPodManagement, appsv1.ParallelPodManagement)))
	}
	errs = append(errs, validateStatefulSetStrategy(&spec.UpdateStrategy, path.Child("updateStrategy"))...)
	if p := spec.PersistentVolumeClaimRetentionPolicy; p != nil {
		policyPath := path.Child("persistentVolumeClaimRetentionPolicy")
		errs = append(errs, validateClaimRetention(p.WhenDeleted, policyPath.Child("whenDeleted"))...)
		errs = append(errs, validateClaimRetention(p.WhenScaled, policyPath.Child("whenScaled"))...)
	}
	errs = append(errs, validateOptionalNonnegative(spec.Replicas, path.Child("replicas"))...)
	errs = append(errs, apimachineryvalidation.ValidateNonnegativeField(int64(spec.MinReadySeconds), path.Child("minReadySeconds"))...)
	if spec.Ordinals != nil {
		errs = append(errs, apimachineryvalidation.ValidateNonnegativeField(int64(spec.Ordinals.Start), path.Child("ordinals.start"))...)
	}
	errs = append(errs, validateWorkloadSelector(spec.Selector, spec.Template.Labels, "statefulset", path)...)
	errs = append(errs, validatePodTemplateSpec(statefulSetPodTemplate(spec), path.Child("template"))...)
	errs = append(errs, validateAlwaysRestart(&spec.Template.Spec, "StatefulSet", path.Child("template", "spec"))...)
	return errs
}

// statefulSetPodTemplate is the template as the pods will have it: each
// claim template becomes a volume of the same name. Containers mount the
// claims by that name, so checking the bare template would report those
// mounts as unknown volumes.
func statefulSetPodTemplate(spec *appsv1.StatefulSetSpec) *corev1.PodTemplateSpec {
	if len(spec.VolumeClaimTemplates) == 0 {
		return &spec.Template
	}
	tmpl := spec.Template.DeepCopy()
	have := make(map[string]bool, len(tmpl.Spec.Volumes))
	for _, v := range tmpl.Spec.Volumes {
		have[v.Name] = true
	}
	for _, claim := range spec.VolumeClaimTemplates {
		if have[claim.Name] {
			continue
		}
		tmpl.Spec.Volumes = append(tmpl.Spec.Volumes, corev1.Volume{
			Name: claim.Name,
			VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim.Name},
			},
		})
	}
	return tmpl
}

// validateStatefulSetStrategy checks spec.updateStrategy.
func validateStatefulSetStrategy(s *appsv1.StatefulSetUpdateStrategy, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch s.Type {
	case "":
		errs = append(errs, field.Required(path, ""))
	case appsv1.OnDeleteStatefulSetStrategyType:
		if s.RollingUpdate != nil {
			errs = append(errs, field.Invalid(path.Child("rollingUpdate"), s.RollingUpdate,
				fmt.Sprintf("only allowed for updateStrategy '%s'", appsv1.RollingUpdateStatefulSetStrategyType)))
		}
	case appsv1.RollingUpdateStatefulSetStrategyType:
		ru := s.RollingUpdate
		if ru == nil {
			break
		}
		ruPath := path.Child("rollingUpdate")
		errs = append(errs, validateOptionalNonnegative(ru.Partition, ruPath.Child("partition"))...)
		if ru.MaxUnavailable != nil {
			muPath := ruPath.Child("maxUnavailable")
			errs = append(errs, validateIntOrPercent(*ru.MaxUnavailable, muPath)...)
			if intOrPercentValue(ru.MaxUnavailable) == 0 {
				errs = append(errs, field.Invalid(muPath, *ru.MaxUnavailable, "cannot be 0"))
			}
			errs = append(errs, validateAtMost100Percent(*ru.MaxUnavailable, muPath)...)
		}
	default:
		errs = append(errs, field.Invalid(path, s, fmt.Sprintf("must be '%s' or '%s'",
			appsv1.RollingUpdateStatefulSetStrategyType, appsv1.OnDeleteStatefulSetStrategyType)))
	}
	return errs
}

// validateClaimRetention checks one of the claim retention policy types.
func validateClaimRetention(t appsv1.PersistentVolumeClaimRetentionPolicyType, path *field.Path) field.ErrorList {
	switch t {
	case appsv1.RetainPersistentVolumeClaimRetentionPolicyType, appsv1.DeletePersistentVolumeClaimRetentionPolicyType:
		return nil
	}
	return field.ErrorList{field.NotSupported(path, t, []appsv1.PersistentVolumeClaimRetentionPolicyType{
		appsv1.RetainPersistentVolumeClaimRetentionPolicyType, appsv1.DeletePersistentVolumeClaimRetentionPolicyType})}
}

// validateStatefulSetUpdate allows changes only to the fields a running
// StatefulSet can act on; the claim templates, selector, service name and
// pod management policy are fixed at creation.
func validateStatefulSetUpdate(s, old *appsv1.StatefulSet) field.ErrorList {
	errs := validateObjectMetaUpdate(&s.ObjectMeta, &old.ObjectMeta)
	// Compare the specs with every mutable field copied over from the old one.
	spec := s.Spec.DeepCopy()
	spec.Replicas = old.Spec.Replicas
	spec.Ordinals = old.Spec.Ordinals
	spec.Template = old.Spec.Template
	spec.UpdateStrategy = old.Spec.UpdateStrategy
	spec.RevisionHistoryLimit = old.Spec.RevisionHistoryLimit
	spec.PersistentVolumeClaimRetentionPolicy = old.Spec.PersistentVolumeClaimRetentionPolicy
	spec.MinReadySeconds = old.Spec.MinReadySeconds
	if !apiequality.Semantic.DeepEqual(*spec, old.Spec) {
		errs = append(errs, field.Forbidden(field.NewPath("spec"),
			"updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', "+
				"'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"))
	}
	return errs
}

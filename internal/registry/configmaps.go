package registry

import (
	"reflect"
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func configmaps() *Resource {
	return &Resource{
		GroupVersionResource: schema.GroupVersionResource{Group: "", Version: "v1", Resource: "configmaps"},
		Kind:                 "ConfigMap",
		SingularName:         "configmap",
		Namespaced:           true,
		ShortNames:           []string{"cm"},
		Categories:           nil,
		New:                  func() runtime.Object { return &corev1.ConfigMap{} },
		NewList:              func() runtime.Object { return &corev1.ConfigMapList{} },
		Status:               false,
		Validate:             func(obj runtime.Object) field.ErrorList { return validateConfigMap(obj.(*corev1.ConfigMap)) },
		ValidateUpdate: func(obj, old runtime.Object) field.ErrorList {
			return validateConfigMapUpdate(obj.(*corev1.ConfigMap), old.(*corev1.ConfigMap))
		},
		Table: &Table{
			Columns: []metav1.TableColumnDefinition{
				column("Data", "string", corev1.ConfigMap{}.SwaggerDoc()["data"]),
				ageColumn(),
			},
			Cells: func(obj runtime.Object) []any {
				cm := obj.(*corev1.ConfigMap)
				return []any{int64(len(cm.Data) + len(cm.BinaryData)), age(cm.CreationTimestamp)}
			},
		},
	}
}

// validateConfigMap checks keys (each valid and in only one of data and
// binaryData) and that the whole fits in the 1 MiB limit.
func validateConfigMap(cm *corev1.ConfigMap) field.ErrorList {
	errs := validateObjectMeta(&cm.ObjectMeta, true, nameIsDNSSubdomain)
	size := 0
	for _, key := range sortedKeys(cm.Data) {
		p := field.NewPath("data").Key(key)
		errs = append(errs, validateDataKey(key, p)...)
		if _, dup := cm.BinaryData[key]; dup {
			errs = append(errs, field.Invalid(p, key, "duplicate of key present in binaryData"))
		}
		size += len(cm.Data[key])
	}
	for _, key := range sortedKeys(cm.BinaryData) {
		errs = append(errs, validateDataKey(key, field.NewPath("binaryData").Key(key))...)
		size += len(cm.BinaryData[key])
	}
	if size > corev1.MaxSecretSize {
		errs = append(errs, field.TooLong(field.NewPath(""), "", corev1.MaxSecretSize))
	}
	return errs
}

// validateConfigMapUpdate freezes the data of an immutable ConfigMap, and
// its immutable flag.
func validateConfigMapUpdate(cm, old *corev1.ConfigMap) field.ErrorList {
	errs := validateObjectMetaUpdate(&cm.ObjectMeta, &old.ObjectMeta)
	if old.Immutable != nil && *old.Immutable {
		const msg = "field is immutable when `immutable` is set"
		if cm.Immutable == nil || !*cm.Immutable {
			errs = append(errs, field.Forbidden(field.NewPath("immutable"), msg))
		}
		if !reflect.DeepEqual(cm.Data, old.Data) {
			errs = append(errs, field.Forbidden(field.NewPath("data"), msg))
		}
		if !reflect.DeepEqual(cm.BinaryData, old.BinaryData) {
			errs = append(errs, field.Forbidden(field.NewPath("binaryData"), msg))
		}
	}
	return errs
}

// validateDataKey checks a ConfigMap or Secret key: the name of a file in a
// volume, so alphanumerics, '-', '_' and '.'.
func validateDataKey(key string, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range validation.IsConfigMapKey(key) {
		errs = append(errs, field.Invalid(path, key, msg))
	}
	return errs
}

// sortedKeys returns a map's keys in order, so errors come out stable.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

package registry

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
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
		Validate: func(obj runtime.Object) field.ErrorList {
			sa := obj.(*corev1.ServiceAccount)
			errs := validateObjectMeta(&sa.ObjectMeta, true, nameIsDNSSubdomain)
			for i, s := range sa.ImagePullSecrets {
				if s.Name == "" {
					errs = append(errs, field.Required(field.NewPath("imagePullSecrets").Index(i).Child("name"), ""))
				}
			}
			return errs
		},
		ValidateUpdate: func(obj, old runtime.Object) field.ErrorList {
			return validateObjectMetaUpdate(&obj.(*corev1.ServiceAccount).ObjectMeta, &old.(*corev1.ServiceAccount).ObjectMeta)
		},
		Table: &Table{
			Columns: []metav1.TableColumnDefinition{
				column("Secrets", "string", corev1.ServiceAccount{}.SwaggerDoc()["secrets"]),
				ageColumn(),
			},
			Cells: func(obj runtime.Object) []any {
				sa := obj.(*corev1.ServiceAccount)
				return []any{int64(len(sa.Secrets)), age(sa.CreationTimestamp)}
			},
		},
	}
}

package registry

import (
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	batchv1 "k8s.io/api/batch/v1"
)

func cronjobs() *Resource {
	return &Resource{
		GroupVersionResource: schema.GroupVersionResource{Group: "batch", Version: "v1", Resource: "cronjobs"},
		Kind:                 "CronJob",
		SingularName:         "cronjob",
		Namespaced:           true,
		ShortNames:           []string{"cj"},
		Categories:           []string{"all"},
		New:                  func() runtime.Object { return &batchv1.CronJob{} },
		NewList:              func() runtime.Object { return &batchv1.CronJobList{} },
		Status:               true,
	}
}

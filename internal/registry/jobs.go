package registry

import (
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	batchv1 "k8s.io/api/batch/v1"
)

func jobs() *Resource {
	return &Resource{
		GroupVersionResource: schema.GroupVersionResource{Group: "batch", Version: "v1", Resource: "jobs"},
		Kind:                 "Job",
		SingularName:         "job",
		Namespaced:           true,
		ShortNames:           nil,
		Categories:           []string{"all"},
		New:                  func() runtime.Object { return &batchv1.Job{} },
		NewList:              func() runtime.Object { return &batchv1.JobList{} },
		Status:               true,
	}
}

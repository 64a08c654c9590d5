// Package registry describes each API resource skiff serves: its names and
// kinds, how its objects are defaulted and validated, which fields can be
// selected, and the columns kubectl shows for it. The API server is generic;
// everything particular to one resource lives here, one file per resource.
package registry

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Resource is one REST resource, such as apps/v1 deployments.
type Resource struct {
	schema.GroupVersionResource
	Kind         string
	SingularName string
	Namespaced   bool
	ShortNames   []string
	Categories   []string

	// New returns an empty object of Kind; NewList an empty list of them.
	New     func() runtime.Object
	NewList func() runtime.Object

	// Status is true when the resource has a /status subresource: writes to
	// the main resource then keep the stored status, and writes to /status
	// change nothing else.
	Status bool
	// Scale, when set, serves /scale as an autoscaling/v1 Scale.
	Scale *ScaleAccess

	// Default fills unset fields as Kubernetes' defaulting does. Nil: none.
	Default func(obj runtime.Object)
	// PrepareForCreate resets what a client may not set on create (often the
	// status). Nil: nothing.
	PrepareForCreate func(obj runtime.Object)
	// PrepareForUpdate, on a write to the main resource (not /status),
	// carries over or derives from old what a client may not set, e.g. a
	// DaemonSet's template generation. Nil: nothing.
	PrepareForUpdate func(obj, old runtime.Object)
	// Validate checks a new object. Nil: only metadata is checked.
	Validate func(obj runtime.Object) field.ErrorList
	// ValidateUpdate checks an update, including immutable fields. Nil: only
	// Validate runs.
	ValidateUpdate func(obj, old runtime.Object) field.ErrorList
	// ValidateStatus checks a write to /status against the stored object.
	// Nil: only metadata is checked.
	ValidateStatus func(obj, old runtime.Object) field.ErrorList
	// Fields returns the selectable fields beyond metadata.name and
	// metadata.namespace, e.g. spec.nodeName for pods. Nil: none.
	Fields func(obj runtime.Object) fields.Set
	// Table is how kubectl get shows the resource. Nil: NAME and AGE.
	Table *Table
	// ReadOnly resources only answer get, list and watch (none yet).
	// Create-only resources answer create only (reviews).
	CreateOnly bool
}

// ScaleAccess reads and writes the replica count behind /scale.
type ScaleAccess struct {
	// Replicas returns spec.replicas, status.replicas and the label selector
	// in its string form (status.selector).
	Get func(obj runtime.Object) (spec, status int32, selector string)
	// SetReplicas sets spec.replicas.
	SetReplicas func(obj runtime.Object, replicas int32)
}

// Table renders objects as rows of a meta.k8s.io/v1 Table.
type Table struct {
	// Columns after NAME, which the API server adds first. Wide-only columns
	// have Priority 1.
	Columns []metav1.TableColumnDefinition
	// Cells returns one value per column of Columns (not NAME).
	Cells func(obj runtime.Object) []any
}

// Key is the etcd key prefix of the resource, e.g. "/registry/apps/deployments/".
func (r *Resource) Key() string {
	if r.Group == "" {
		return "/registry/" + r.Resource + "/"
	}
	return "/registry/" + r.Group + "/" + r.Resource + "/"
}

// GroupVersionKind returns the resource's kind with its group and version.
func (r *Resource) GroupVersionKind() schema.GroupVersionKind {
	return r.GroupVersion().WithKind(r.Kind)
}

// Verbs lists what the resource answers, as discovery shows it.
func (r *Resource) Verbs() []string {
	if r.CreateOnly {
		return []string{"create"}
	}
	return []string{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}
}

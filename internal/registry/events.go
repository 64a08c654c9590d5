package registry

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func events() *Resource {
	return &Resource{
		GroupVersionResource: schema.GroupVersionResource{Group: "", Version: "v1", Resource: "events"},
		Kind:                 "Event",
		SingularName:         "event",
		Namespaced:           true,
		ShortNames:           []string{"ev"},
		Categories:           nil,
		New:                  func() runtime.Object { return &corev1.Event{} },
		NewList:              func() runtime.Object { return &corev1.EventList{} },
		Status:               false,
		// Kubernetes has no defaults for core/v1 events.
		Validate: func(obj runtime.Object) field.ErrorList {
			ev := obj.(*corev1.Event)
			return append(validateObjectMeta(&ev.ObjectMeta, true, nameIsDNSSubdomain), validateEvent(ev)...)
		},
		ValidateUpdate: func(obj, old runtime.Object) field.ErrorList {
			return validateObjectMetaUpdate(&obj.(*corev1.Event).ObjectMeta, &old.(*corev1.Event).ObjectMeta)
		},
		Fields: func(obj runtime.Object) fields.Set { return eventFields(obj.(*corev1.Event)) },
		Table: &Table{
			// Events are listed by time, not name: kubectl shows NAME only
			// with -o wide, last.
			Columns: []metav1.TableColumnDefinition{
				column("Last Seen", "string", corev1.Event{}.SwaggerDoc()["lastTimestamp"]),
				column("Type", "string", corev1.Event{}.SwaggerDoc()["type"]),
				column("Reason", "string", corev1.Event{}.SwaggerDoc()["reason"]),
				column("Object", "string", corev1.Event{}.SwaggerDoc()["involvedObject"]),
				wideColumn("Subobject", "string", corev1.ObjectReference{}.SwaggerDoc()["fieldPath"]),
				wideColumn("Source", "string", corev1.Event{}.SwaggerDoc()["source"]),
				column("Message", "string", corev1.Event{}.SwaggerDoc()["message"]),
				wideColumn("First Seen", "string", corev1.Event{}.SwaggerDoc()["firstTimestamp"]),
				wideColumn("Count", "string", corev1.Event{}.SwaggerDoc()["count"]),
				{Name: "Name", Type: "string", Format: "name", Priority: 1, Description: metav1.ObjectMeta{}.SwaggerDoc()["name"]},
			},
			Cells: func(obj runtime.Object) []any { return eventCells(obj.(*corev1.Event)) },
		},
	}
}

// Limits on the fields of events written through the newer API shape.
const (
	eventReportingInstanceLimit = 128
	eventActionLimit            = 128
)

// validateEvent applies the rules core/v1 events have always had: the event
// lives in its object's namespace, and events carrying an eventTime (the
// events.k8s.io shape) name their reporter and action.
func validateEvent(ev *corev1.Event) field.ErrorList {
	var errs field.ErrorList
	nsPath := field.NewPath("involvedObject", "namespace")
	if ev.EventTime.IsZero() {
		if ev.InvolvedObject.Namespace == "" {
			// Cluster-scoped objects: old clients put their events in default.
			if ev.Namespace != "" && ev.Namespace != metav1.NamespaceDefault {
				errs = append(errs, field.Invalid(nsPath, ev.InvolvedObject.Namespace, "does not match event.namespace"))
			}
		} else if ev.Namespace != ev.InvolvedObject.Namespace {
			errs = append(errs, field.Invalid(nsPath, ev.InvolvedObject.Namespace, "does not match event.namespace"))
		}
		return errs
	}
	if ev.InvolvedObject.Namespace == "" && ev.Namespace != metav1.NamespaceDefault && ev.Namespace != metav1.NamespaceSystem {
		errs = append(errs, field.Invalid(nsPath, ev.InvolvedObject.Namespace, "does not match event.namespace"))
	}
	rc := field.NewPath("reportingComponent")
	if ev.ReportingController == "" {
		errs = append(errs, field.Required(rc, ""))
	}
	errs = append(errs, validateQualifiedName(ev.ReportingController, rc)...)
	if ev.ReportingInstance == "" {
		errs = append(errs, field.Required(field.NewPath("reportingInstance"), ""))
	}
	if len(ev.ReportingInstance) > eventReportingInstanceLimit {
		errs = append(errs, field.Invalid(field.NewPath("reportingInstance"), "", fmt.Sprintf("can have at most %v characters", eventReportingInstanceLimit)))
	}
	if ev.Action == "" {
		errs = append(errs, field.Required(field.NewPath("action"), ""))
	}
	if len(ev.Action) > eventActionLimit {
		errs = append(errs, field.Invalid(field.NewPath("action"), "", fmt.Sprintf("can have at most %v characters", eventActionLimit)))
	}
	return errs
}

// eventFields are the field selectors events answer to; kubectl describe
// finds an object's events with the involvedObject ones.
func eventFields(ev *corev1.Event) fields.Set {
	source := ev.Source.Component
	if source == "" {
		source = ev.ReportingController
	}
	o := ev.InvolvedObject
	return fields.Set{
		"involvedObject.kind":            o.Kind,
		"involvedObject.namespace":       o.Namespace,
		"involvedObject.name":            o.Name,
		"involvedObject.uid":             string(o.UID),
		"involvedObject.apiVersion":      o.APIVersion,
		"involvedObject.resourceVersion": o.ResourceVersion,
		"involvedObject.fieldPath":       o.FieldPath,
		"reason":                         ev.Reason,
		"reportingComponent":             ev.ReportingController,
		"source":                         source,
		"type":                           ev.Type,
	}
}

func eventCells(ev *corev1.Event) []any {
	first := age(ev.FirstTimestamp)
	if ev.FirstTimestamp.IsZero() {
		first = microAge(ev.EventTime)
	}
	last := age(ev.LastTimestamp)
	if ev.LastTimestamp.IsZero() {
		last = first
	}
	count := ev.Count
	if ev.Series != nil {
		last = microAge(ev.Series.LastObservedTime)
		count = ev.Series.Count
	} else if count == 0 {
		// Events of the newer API shape are singletons without a count.
		count = 1
	}
	target := strings.ToLower(ev.InvolvedObject.Kind)
	if ev.InvolvedObject.Name != "" {
		target += "/" + ev.InvolvedObject.Name
	}
	return []any{last, ev.Type, ev.Reason, target, ev.InvolvedObject.FieldPath, eventSource(ev),
		strings.TrimSpace(ev.Message), first, int64(count), ev.Name}
}

// eventSource is "component, host", falling back on the reporting
// controller and instance.
func eventSource(ev *corev1.Event) string {
	component, host := ev.Source.Component, ev.Source.Host
	if component == "" {
		component = ev.ReportingController
	}
	if host == "" {
		host = ev.ReportingInstance
	}
	if host == "" {
		return component
	}
	return component + ", " + host
}

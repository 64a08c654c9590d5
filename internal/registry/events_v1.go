package registry

import (
	"cmp"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/validate/content"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Length limits of events.k8s.io events.
const (
	maxEventReasonLength   = 128
	maxEventActionLength   = 128
	maxEventInstanceLength = 128
	maxEventNoteLength     = 1024
)

func eventsV1() *Resource {
	return &Resource{
		GroupVersionResource: schema.GroupVersionResource{Group: "events.k8s.io", Version: "v1", Resource: "events"},
		Kind:                 "Event",
		SingularName:         "event",
		Namespaced:           true,
		ShortNames:           []string{"ev"},
		Categories:           nil,
		New:                  func() runtime.Object { return &eventsv1.Event{} },
		NewList:              func() runtime.Object { return &eventsv1.EventList{} },
		Status:               false,
		Validate:             func(obj runtime.Object) field.ErrorList { return validateEventV1(obj.(*eventsv1.Event)) },
		ValidateUpdate: func(obj, old runtime.Object) field.ErrorList {
			return validateEventV1Update(obj.(*eventsv1.Event), old.(*eventsv1.Event))
		},
		Fields: func(obj runtime.Object) fields.Set { return eventV1Fields(obj.(*eventsv1.Event)) },
		// The columns of core events, as kube-apiserver prints both from
		// one printer. NAME, last there, is the API server's first column.
		Table: &Table{
			Columns: []metav1.TableColumnDefinition{
				column("Last Seen", "string", "Time since the event was last observed."),
				column("Type", "string", "Normal or Warning."),
				column("Reason", "string", "Why the action was taken."),
				column("Object", "string", "The object the event is about."),
				wideColumn("Subobject", "string", "The part of the object the event is about."),
				wideColumn("Source", "string", "The controller, and its instance, that reported the event."),
				column("Message", "string", "Human-readable description of the event."),
				wideColumn("First Seen", "string", "Time since the event was first observed."),
				wideColumn("Count", "string", "Number of times the event occurred."),
			},
			Cells: func(obj runtime.Object) []any { return eventV1Cells(obj.(*eventsv1.Event)) },
		},
	}
}

// validateEventV1 checks an event written through events.k8s.io/v1: the
// new API requires who reported it, what it did and when, and leaves the
// deprecated core fields to clients of the old API.
func validateEventV1(e *eventsv1.Event) field.ErrorList {
	errs := validateObjectMeta(&e.ObjectMeta, true, nameIsDNSSubdomain)
	if e.EventTime.IsZero() {
		errs = append(errs, field.Required(field.NewPath("eventTime"), ""))
	}
	if e.Type != corev1.EventTypeNormal && e.Type != corev1.EventTypeWarning {
		errs = append(errs, field.Invalid(field.NewPath("type"), e.Type, "has invalid value: "+e.Type))
	}
	if e.Regarding.Namespace == "" && e.Namespace != metav1.NamespaceDefault && e.Namespace != metav1.NamespaceSystem {
		errs = append(errs, field.Invalid(field.NewPath("regarding", "namespace"), e.Regarding.Namespace, "does not match event.namespace"))
	}
	controllerPath := field.NewPath("reportingController")
	if e.ReportingController == "" {
		errs = append(errs, field.Required(controllerPath, ""))
	}
	for _, msg := range content.IsQualifiedName(e.ReportingController) {
		errs = append(errs, field.Invalid(controllerPath, e.ReportingController, msg))
	}
	errs = append(errs, requiredMaxLength(e.ReportingInstance, maxEventInstanceLength, field.NewPath("reportingInstance"))...)
	errs = append(errs, requiredMaxLength(e.Action, maxEventActionLength, field.NewPath("action"))...)
	errs = append(errs, requiredMaxLength(e.Reason, maxEventReasonLength, field.NewPath("reason"))...)
	if len(e.Note) > maxEventNoteLength {
		errs = append(errs, field.Invalid(field.NewPath("note"), "", fmt.Sprintf("can have at most %d characters", maxEventNoteLength)))
	}
	if s := e.Series; s != nil {
		if s.Count < 2 {
			errs = append(errs, field.Invalid(field.NewPath("series", "count"), "", "should be at least 2"))
		}
		if s.LastObservedTime.IsZero() {
			errs = append(errs, field.Required(field.NewPath("series", "lastObservedTime"), ""))
		}
	}
	for _, f := range []struct {
		name  string
		unset bool
	}{
		{"deprecatedFirstTimestamp", e.DeprecatedFirstTimestamp.IsZero()},
		{"deprecatedLastTimestamp", e.DeprecatedLastTimestamp.IsZero()},
		{"deprecatedCount", e.DeprecatedCount == 0},
		{"deprecatedSource", e.DeprecatedSource.Component == "" && e.DeprecatedSource.Host == ""},
	} {
		if !f.unset {
			errs = append(errs, field.Invalid(field.NewPath(f.name), "", "needs to be unset"))
		}
	}
	return errs
}

// requiredMaxLength checks a required string field with a length limit.
func requiredMaxLength(value string, limit int, path *field.Path) field.ErrorList {
	switch {
	case value == "":
		return field.ErrorList{field.Required(path, "")}
	case len(value) > limit:
		return field.ErrorList{field.Invalid(path, "", fmt.Sprintf("can have at most %d characters", limit))}
	}
	return nil
}

// validateEventV1Update lets an event's series, and nothing else it
// reports, change: recorders update the count and last observation of an
// event that repeats.
func validateEventV1Update(e, old *eventsv1.Event) field.ErrorList {
	errs := validateObjectMetaUpdate(&e.ObjectMeta, &old.ObjectMeta)
	for _, f := range []struct {
		name     string
		new, old any
	}{
		{"regarding", e.Regarding, old.Regarding},
		{"related", e.Related, old.Related},
		{"reason", e.Reason, old.Reason},
		{"note", e.Note, old.Note},
		{"type", e.Type, old.Type},
		{"eventTime", e.EventTime, old.EventTime},
		{"action", e.Action, old.Action},
		{"reportingController", e.ReportingController, old.ReportingController},
		{"reportingInstance", e.ReportingInstance, old.ReportingInstance},
		{"deprecatedSource", e.DeprecatedSource, old.DeprecatedSource},
		{"deprecatedFirstTimestamp", e.DeprecatedFirstTimestamp, old.DeprecatedFirstTimestamp},
		{"deprecatedLastTimestamp", e.DeprecatedLastTimestamp, old.DeprecatedLastTimestamp},
		{"deprecatedCount", e.DeprecatedCount, old.DeprecatedCount},
	} {
		if !apiequality.Semantic.DeepEqual(f.new, f.old) {
			errs = append(errs, field.Invalid(field.NewPath(f.name), f.new, apimachineryvalidation.FieldImmutableErrorMsg))
		}
	}
	return errs
}

// eventV1Fields are the field selectors of events.k8s.io events, named as
// that API names them.
func eventV1Fields(e *eventsv1.Event) fields.Set {
	r := e.Regarding
	return fields.Set{
		"regarding.kind":            r.Kind,
		"regarding.namespace":       r.Namespace,
		"regarding.name":            r.Name,
		"regarding.uid":             string(r.UID),
		"regarding.apiVersion":      r.APIVersion,
		"regarding.resourceVersion": r.ResourceVersion,
		"regarding.fieldPath":       r.FieldPath,
		"reason":                    e.Reason,
		"reportingController":       e.ReportingController,
		"type":                      e.Type,
	}
}

// eventV1Cells renders an event as kubectl shows core events, reading the
// deprecated core fields first and the new ones where those are unset.
func eventV1Cells(e *eventsv1.Event) []any {
	firstSeen := age(e.DeprecatedFirstTimestamp)
	if e.DeprecatedFirstTimestamp.IsZero() {
		firstSeen = microAge(e.EventTime)
	}
	lastSeen := age(e.DeprecatedLastTimestamp)
	if e.DeprecatedLastTimestamp.IsZero() {
		lastSeen = firstSeen
	}
	count := e.DeprecatedCount
	switch {
	case e.Series != nil:
		lastSeen = microAge(e.Series.LastObservedTime)
		count = e.Series.Count
	case count == 0:
		// A singleton event of the new API carries no count.
		count = 1
	}
	object := strings.ToLower(e.Regarding.Kind)
	if e.Regarding.Name != "" {
		object += "/" + e.Regarding.Name
	}
	source := cmp.Or(e.DeprecatedSource.Component, e.ReportingController)
	if instance := cmp.Or(e.DeprecatedSource.Host, e.ReportingInstance); instance != "" {
		source += ", " + instance
	}
	return []any{lastSeen, e.Type, e.Reason, object, e.Regarding.FieldPath, source,
		strings.TrimSpace(e.Note), firstSeen, int64(count)}
}

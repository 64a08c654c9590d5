package registry

import (
	"reflect"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Name rules, as Kubernetes assigns them per resource. Most names are DNS-1123
// subdomains; namespaces and services are DNS-1123 labels (services since
// RelaxedServiceNameValidation went on by default; before, DNS-1035).
var (
	nameIsDNSSubdomain apivalidation.ValidateNameFunc = apivalidation.NameIsDNSSubdomain
	nameIsDNSLabel     apivalidation.ValidateNameFunc = apivalidation.NameIsDNSLabel
)

var metadataPath = field.NewPath("metadata")

// validateObjectMeta checks the metadata of a new object at "metadata": the
// name against nameFn, the namespace (required when namespaced, forbidden
// otherwise), labels, annotations, owner references and finalizers. The API
// server has already turned generateName into a name.
func validateObjectMeta(meta *metav1.ObjectMeta, namespaced bool, nameFn apivalidation.ValidateNameFunc) field.ErrorList {
	errs := apivalidation.ValidateObjectMeta(meta, namespaced, nameFn, metadataPath)
	return append(errs, validateFinalizerNames(meta.Finalizers, metadataPath.Child("finalizers"))...)
}

// validateObjectMetaUpdate checks that an update leaves the immutable parts of
// metadata alone (name, namespace, uid, creationTimestamp, ...) and that the
// rest is still valid.
func validateObjectMetaUpdate(meta, old *metav1.ObjectMeta) field.ErrorList {
	errs := apivalidation.ValidateObjectMetaUpdate(meta, old, metadataPath)
	return append(errs, validateFinalizerNames(meta.Finalizers, metadataPath.Child("finalizers"))...)
}

// validateFinalizerNames adds Kubernetes' own rule to apimachinery's: a
// finalizer without a domain must be one of the standard ones.
func validateFinalizerNames(finalizers []string, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, f := range finalizers {
		if strings.Contains(f, "/") {
			continue
		}
		switch f {
		case string(corev1.FinalizerKubernetes), metav1.FinalizerOrphanDependents, metav1.FinalizerDeleteDependents:
		default:
			errs = append(errs, field.Invalid(path.Index(i), f, "name is neither a standard finalizer name nor is it fully qualified"))
		}
	}
	return errs
}

// validateName reports the messages of a name rule as field.Invalid at path.
func validateName(name string, nameFn apivalidation.ValidateNameFunc, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range nameFn(name, false) {
		errs = append(errs, field.Invalid(path, name, msg))
	}
	return errs
}

// age renders the time since t as kubectl's AGE column does.
func age(t metav1.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return humanSince(t.Time, time.Now())
}

// humanSince renders now-t the way kubectl does: "5m", "3h10m", "2d".
func humanSince(t, now time.Time) string {
	return duration.HumanDuration(now.Sub(t))
}

// microAge is age for MicroTime fields (events).
func microAge(t metav1.MicroTime) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(time.Since(t.Time))
}

// column is a Table column shown by plain kubectl get.
func column(name, typ, description string) metav1.TableColumnDefinition {
	return metav1.TableColumnDefinition{Name: name, Type: typ, Description: description}
}

// wideColumn is a Table column shown only by kubectl get -o wide.
func wideColumn(name, typ, description string) metav1.TableColumnDefinition {
	return metav1.TableColumnDefinition{Name: name, Type: typ, Description: description, Priority: 1}
}

// ageColumn is the AGE column; its cells come from age.
func ageColumn() metav1.TableColumnDefinition {
	return column("Age", "string", metav1.ObjectMeta{}.SwaggerDoc()["creationTimestamp"])
}

// orNone returns s, or "<none>" when s is empty, as kubectl prints blanks.
func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

// setFields returns the JSON names of the non-nil pointer fields of a struct
// value, in declaration order. Volume sources are "one of" structs: this is
// how validation counts how many a client has set.
func setFields(v any) []string {
	rv := reflect.ValueOf(v)
	rt := rv.Type()
	var names []string
	for i := range rt.NumField() {
		f := rv.Field(i)
		if f.Kind() != reflect.Pointer || f.IsNil() {
			continue
		}
		name, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
		if name == "" {
			r, n := utf8.DecodeRuneInString(rt.Field(i).Name)
			name = string(unicode.ToLower(r)) + rt.Field(i).Name[n:]
		}
		names = append(names, name)
	}
	return names
}

// validateAnnotations checks annotation keys and their total size.
func validateAnnotations(annotations map[string]string, path *field.Path) field.ErrorList {
	return apivalidation.ValidateAnnotations(annotations, path)
}

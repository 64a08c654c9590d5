package apiserver

import (
	"crypto/rand"
	"reflect"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Objects are typed Go structs; these helpers reach their spec and status
// generically so that the API server needs no per-resource code for the
// /status rules and for generation tracking.

func structValue(obj runtime.Object) reflect.Value {
	v := reflect.ValueOf(obj)
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	return v
}

// statusField returns the object's Status field, if it has one.
func statusField(obj runtime.Object) (reflect.Value, bool) {
	f := structValue(obj).FieldByName("Status")
	return f, f.IsValid() && f.CanSet()
}

// copyStatus sets dst's status to src's.
func copyStatus(dst, src runtime.Object) {
	d, ok := statusField(dst)
	s, ok2 := statusField(src)
	if ok && ok2 {
		d.Set(s)
	}
}

// hasSpec reports whether the object tracks metadata.generation: objects with
// a spec do, as in Kubernetes.
func hasSpec(obj runtime.Object) bool {
	return structValue(obj).FieldByName("Spec").IsValid()
}

// specChanged reports whether anything besides metadata and status differs.
func specChanged(a, b runtime.Object) bool {
	va, vb := structValue(a), structValue(b)
	t := va.Type()
	for i := 0; i < t.NumField(); i++ {
		switch t.Field(i).Name {
		case "TypeMeta", "ObjectMeta", "Status":
			continue
		}
		if !equality.Semantic.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) {
			return true
		}
	}
	return false
}

// partialMetadata is the PartialObjectMetadata view of an object.
func partialMetadata(obj runtime.Object) *metav1.PartialObjectMetadata {
	out := &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "PartialObjectMetadata"}}
	if a, ok := obj.(metav1.ObjectMetaAccessor); ok {
		if om, ok := a.GetObjectMeta().(*metav1.ObjectMeta); ok {
			out.ObjectMeta = *om
		}
	}
	return out
}

// generateNameSuffix is five characters from Kubernetes' alphabet, which
// leaves out vowels and look-alike digits.
func generateNameSuffix() string {
	const alphabet = "bcdfghjklmnpqrstvwxz2456789"
	b := make([]byte, 5)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

package apiserver

import (
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"
)

var nameColumn = metav1.TableColumnDefinition{
	Name: "Name", Type: "string", Format: "name",
	Description: "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated.",
}

var ageColumn = metav1.TableColumnDefinition{
	Name: "Age", Type: "string",
	Description: "CreationTimestamp is a timestamp representing the server time when this object was created.",
}

// table renders objects as a meta.k8s.io/v1 Table with the resource's
// columns. Each row carries the object's metadata, the whole object or
// nothing, as includeObject asks.
func (s *Server) table(q *request, objs []runtime.Object) *metav1.Table {
	t := &metav1.Table{TypeMeta: metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "Table"}}
	t.ColumnDefinitions = []metav1.TableColumnDefinition{nameColumn}
	if q.res.Table != nil {
		t.ColumnDefinitions = append(t.ColumnDefinitions, q.res.Table.Columns...)
	} else {
		t.ColumnDefinitions = append(t.ColumnDefinitions, ageColumn)
	}
	include := q.r.URL.Query().Get("includeObject")
	t.Rows = make([]metav1.TableRow, 0, len(objs))
	for _, obj := range objs {
		m, err := meta.Accessor(obj)
		if err != nil {
			continue
		}
		cells := []any{m.GetName()}
		if q.res.Table != nil {
			cells = append(cells, q.res.Table.Cells(obj)...)
		} else {
			cells = append(cells, age(m.GetCreationTimestamp()))
		}
		row := metav1.TableRow{Cells: cells}
		switch include {
		case "None":
		case "Object":
			o := obj.DeepCopyObject()
			o.GetObjectKind().SetGroupVersionKind(q.res.GroupVersionKind())
			row.Object = runtime.RawExtension{Object: o}
		default:
			row.Object = runtime.RawExtension{Object: partialMetadata(obj)}
		}
		t.Rows = append(t.Rows, row)
	}
	return t
}

func age(ts metav1.Time) string {
	if ts.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(time.Since(ts.Time))
}

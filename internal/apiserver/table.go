package apiserver

import (
	"bytes"
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
func (s *Server) table(q *request, objs []runtime.Object, out output) *metav1.Table {
	t := &metav1.Table{TypeMeta: metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "Table"}}
	// A resource whose columns carry their own name column (events show it
	// last) gets no NAME in front.
	ownName := false
	if q.res.Table != nil {
		for _, c := range q.res.Table.Columns {
			ownName = ownName || c.Format == "name"
		}
	}
	if !ownName {
		t.ColumnDefinitions = []metav1.TableColumnDefinition{nameColumn}
	}
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
		var cells []any
		if !ownName {
			cells = []any{m.GetName()}
		}
		if q.res.Table != nil {
			cells = append(cells, q.res.Table.Cells(obj)...)
		} else {
			cells = append(cells, age(m.GetCreationTimestamp()))
		}
		row := metav1.TableRow{Cells: cells}
		var embedded runtime.Object
		switch include {
		case "None":
		case "Object":
			o := obj.DeepCopyObject()
			o.GetObjectKind().SetGroupVersionKind(q.res.GroupVersionKind())
			embedded = o
		default:
			embedded = partialMetadata(obj)
		}
		if embedded != nil {
			// RawExtension only serializes Raw: encode the row's object
			// in the reply's own format.
			row.Object = runtime.RawExtension{Raw: s.encodeEmbedded(embedded, out)}
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

// encodeEmbedded encodes an object nested in another (a Table row) in the
// reply's format; JSON when that format cannot carry it.
func (s *Server) encodeEmbedded(obj runtime.Object, out output) []byte {
	enc := s.codecs.json.Serializer
	if out.Media == mediaProtobuf && protoCapable(obj) {
		enc = s.codecs.proto.Serializer
	}
	var buf bytes.Buffer
	if err := enc.Encode(obj, &buf); err != nil {
		return nil
	}
	return bytes.TrimRight(buf.Bytes(), "\n")
}

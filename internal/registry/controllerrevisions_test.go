package registry

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func testControllerRevision() *appsv1.ControllerRevision {
	return &appsv1.ControllerRevision{
		ObjectMeta: testMeta("agent-6c9d7f"),
		Data:       runtime.RawExtension{Raw: []byte(`{"spec":{"template":{"$patch":"replace"}}}`)},
		Revision:   1,
	}
}

func TestControllerRevisionValidation(t *testing.T) {
	noData := testControllerRevision()
	noData.Data = runtime.RawExtension{}
	negative := testControllerRevision()
	negative.Revision = -1

	runCheckCases(t, []checkCase{
		{"data required", controllerrevisions(), noData, "data", field.ErrorTypeRequired, "data is mandatory"},
		{"revision not negative", controllerrevisions(), negative, "revision", field.ErrorTypeInvalid, "must be greater than or equal to 0"},
	})
}

func TestControllerRevisionDataIsImmutable(t *testing.T) {
	old := testControllerRevision()
	respaced := testControllerRevision()
	respaced.Data.Raw = []byte(`{ "spec": { "template": { "$patch": "replace" } } }`)
	respaced.Labels = map[string]string{"controller.kubernetes.io/hash": "6c9d7f"}
	if errs := updateErrors(controllerrevisions(), respaced, old); len(errs) > 0 {
		t.Errorf("same data, other spacing, rejected: %v", errs)
	}

	changed := testControllerRevision()
	changed.Data.Raw = []byte(`{"spec":{}}`)
	if errs := updateErrors(controllerrevisions(), changed, old); findFieldError(errs, "data", field.ErrorTypeInvalid, "field is immutable") == nil {
		t.Errorf("data change accepted: %v", errs)
	}
}

func TestControllerRevisionShowsItsController(t *testing.T) {
	rev := testControllerRevision()
	if got := controllerrevisions().Table.Cells(rev)[0]; got != "<none>" {
		t.Errorf("Controller without owner = %v, want <none>", got)
	}
	rev.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "DaemonSet", Name: "agent", UID: "u", Controller: new(true)}}
	cells := controllerrevisions().Table.Cells(rev)
	if cells[0] != "daemonset.apps/agent" || cells[1] != int64(1) {
		t.Errorf("Controller, Revision = %v, %v; want daemonset.apps/agent, 1", cells[0], cells[1])
	}
}

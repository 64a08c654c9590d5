package registry

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func testEventV1() *eventsv1.Event {
	return &eventsv1.Event{
		ObjectMeta:          testMeta("web.17f3a"),
		EventTime:           metav1.NewMicroTime(time.Now().Add(-5 * time.Minute)),
		ReportingController: "skiff.dev/scheduler",
		ReportingInstance:   "scheduler-node-1",
		Action:              "Binding",
		Reason:              "Scheduled",
		Regarding:           corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web", FieldPath: "spec.containers{web}"},
		Note:                "Successfully assigned default/web to node-1 ",
		Type:                corev1.EventTypeNormal,
	}
}

func TestEventV1Validation(t *testing.T) {
	if errs := createErrors(eventsV1(), testEventV1()); len(errs) > 0 {
		t.Errorf("valid event rejected: %v", errs)
	}
	noTime := testEventV1()
	noTime.EventTime = metav1.MicroTime{}
	noController := testEventV1()
	noController.ReportingController = ""
	legacyCount := testEventV1()
	legacyCount.DeprecatedCount = 3

	runCheckCases(t, []checkCase{
		{"event time", eventsV1(), noTime, "eventTime", field.ErrorTypeRequired, ""},
		{"reporting controller", eventsV1(), noController, "reportingController", field.ErrorTypeRequired, ""},
		{"deprecated fields unset", eventsV1(), legacyCount, "deprecatedCount", field.ErrorTypeInvalid, "needs to be unset"},
	})

	renoted := testEventV1()
	renoted.Note = "something else"
	if errs := updateErrors(eventsV1(), renoted, testEventV1()); findFieldError(errs, "note", field.ErrorTypeInvalid, "field is immutable") == nil {
		t.Errorf("note change accepted: %v", errs)
	}
}

func TestEventV1FieldsAndCells(t *testing.T) {
	e := testEventV1()
	f := eventsV1().Fields(e)
	if f["regarding.name"] != "web" || f["regarding.kind"] != "Pod" || f["reason"] != "Scheduled" || f["type"] != "Normal" {
		t.Errorf("fields = %v", f)
	}
	got := eventsV1().Table.Cells(e)
	want := []any{"5m", "Normal", "Scheduled", "pod/web", "spec.containers{web}", "skiff.dev/scheduler, scheduler-node-1",
		"Successfully assigned default/web to node-1", "5m", int64(1)}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("cell %d (%s) = %v, want %v", i, eventsV1().Table.Columns[i].Name, got[i], want[i])
		}
	}
}

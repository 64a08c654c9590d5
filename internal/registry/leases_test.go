package registry

import (
	"testing"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func TestLeaseValidation(t *testing.T) {
	lease := func() *coordinationv1.Lease {
		return &coordinationv1.Lease{ObjectMeta: testMeta("node-1"), Spec: coordinationv1.LeaseSpec{
			HolderIdentity: new("node-1"), LeaseDurationSeconds: new(int32(40)),
		}}
	}
	if errs := createErrors(leases(), lease()); len(errs) > 0 {
		t.Errorf("valid lease rejected: %v", errs)
	}

	zero := lease()
	zero.Spec.LeaseDurationSeconds = new(int32(0))
	preferred := lease()
	preferred.Spec.PreferredHolder = new("node-2")
	runCheckCases(t, []checkCase{
		{"duration positive", leases(), zero, "spec.leaseDurationSeconds", field.ErrorTypeInvalid, "must be greater than 0"},
		{"preferred holder needs a strategy", leases(), preferred, "spec.preferredHolder", field.ErrorTypeForbidden, "may only be specified if `strategy` is defined"},
	})

	if got := leases().Table.Cells(lease())[0]; got != "node-1" {
		t.Errorf("Holder = %v, want node-1", got)
	}
}

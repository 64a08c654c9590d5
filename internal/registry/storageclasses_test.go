package registry

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func testStorageClass() *storagev1.StorageClass {
	return &storagev1.StorageClass{
		ObjectMeta:  metav1.ObjectMeta{Name: "local-path", UID: "u", ResourceVersion: "1"},
		Provisioner: "skiff.dev/local-path",
		Parameters:  map[string]string{"path": "/var/lib/skiff/storage"},
	}
}

func TestStorageClassDefaultsAndCells(t *testing.T) {
	sc := testStorageClass()
	storageclasses().Default(sc)
	if *sc.ReclaimPolicy != corev1.PersistentVolumeReclaimDelete || *sc.VolumeBindingMode != storagev1.VolumeBindingImmediate {
		t.Errorf("reclaimPolicy %s, volumeBindingMode %s; want Delete, Immediate", *sc.ReclaimPolicy, *sc.VolumeBindingMode)
	}
	cells := storageclasses().Table.Cells(sc)
	if cells[0] != "local-path" || cells[1] != "skiff.dev/local-path" || cells[2] != "Delete" || cells[3] != "Immediate" || cells[4] != false {
		t.Errorf("cells = %v", cells)
	}
	// The default class is marked in its NAME, as kubectl shows it.
	sc.Annotations = map[string]string{"storageclass.kubernetes.io/is-default-class": "true"}
	if name := storageclasses().Table.Cells(sc)[0]; name != "local-path (default)" {
		t.Errorf("default class name cell = %v", name)
	}
}

func TestStorageClassValidation(t *testing.T) {
	if errs := createErrors(storageclasses(), testStorageClass()); len(errs) > 0 {
		t.Errorf("valid class rejected: %v", errs)
	}
	noProvisioner := testStorageClass()
	noProvisioner.Provisioner = ""
	runCheckCases(t, []checkCase{
		{"provisioner required", storageclasses(), noProvisioner, "provisioner", field.ErrorTypeRequired, ""},
	})

	old := testStorageClass()
	changed := testStorageClass()
	changed.Parameters["path"] = "/elsewhere"
	changed.VolumeBindingMode = new(storagev1.VolumeBindingWaitForFirstConsumer)
	errs := updateErrors(storageclasses(), changed, old)
	if findFieldError(errs, "parameters", field.ErrorTypeForbidden, "updates to parameters are forbidden.") == nil ||
		findFieldError(errs, "volumeBindingMode", field.ErrorTypeInvalid, "field is immutable") == nil {
		t.Errorf("parameter and binding mode changes: %v", errs)
	}
}

package admission

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-sh/skiff/internal/apiserver"
	"github.com/skiff-sh/skiff/internal/registry"
)

func TestClaimsGrowOnlyBoundAndWhereTheClassAllowsIt(t *testing.T) {
	chain, st := newChain()
	yes, no := true, false
	st.objects["/registry/storage.k8s.io/storageclasses/grows"] = &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "grows"}, AllowVolumeExpansion: &yes}
	st.objects["/registry/storage.k8s.io/storageclasses/fixed"] = &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "fixed"}, AllowVolumeExpansion: &no}
	st.objects["/registry/storage.k8s.io/storageclasses/local-path"] = &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "local-path"}}
	claim := func(class, size string, phase corev1.PersistentVolumeClaimPhase) *corev1.PersistentVolumeClaim {
		return &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "data", Namespace: "default"},
			Spec: corev1.PersistentVolumeClaimSpec{StorageClassName: &class,
				Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}}},
			Status: corev1.PersistentVolumeClaimStatus{Phase: phase}}
	}
	var pvcs *registry.Resource
	for _, r := range registry.All() {
		if r.Group == "" && r.Resource == "persistentvolumeclaims" {
			pvcs = r
		}
	}
	for _, tc := range []struct {
		name     string
		old, new *corev1.PersistentVolumeClaim
		refused  string
	}{
		{"growing where the class allows it", claim("grows", "1Gi", corev1.ClaimBound), claim("grows", "2Gi", corev1.ClaimBound), ""},
		{"the same size", claim("fixed", "1Gi", corev1.ClaimBound), claim("fixed", "1Gi", corev1.ClaimBound), ""},
		{"a class that does not allow it", claim("fixed", "1Gi", corev1.ClaimBound), claim("fixed", "2Gi", corev1.ClaimBound), "must support resize"},
		{"a class that does not say (local-path)", claim("local-path", "1Gi", corev1.ClaimBound), claim("local-path", "2Gi", corev1.ClaimBound), "must support resize"},
		{"a missing class", claim("gone", "1Gi", corev1.ClaimBound), claim("gone", "2Gi", corev1.ClaimBound), "must support resize"},
		{"an unbound claim", claim("grows", "1Gi", corev1.ClaimPending), claim("grows", "2Gi", corev1.ClaimPending), "Only bound persistent volume claims can be expanded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := chain.Admit(context.Background(), apiserver.Update, pvcs, tc.new, tc.old)
			switch {
			case tc.refused == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.refused != "" && (!apierrors.IsForbidden(err) || !strings.Contains(err.Error(), tc.refused)):
				t.Errorf("error = %v, want Forbidden: %s", err, tc.refused)
			}
		})
	}
}

package registry

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// testStatefulSet has a claim template that its container mounts, as most
// StatefulSets do.
func testStatefulSet() *appsv1.StatefulSet {
	tmpl := webTemplate(corev1.RestartPolicyAlways)
	tmpl.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
	return &appsv1.StatefulSet{
		ObjectMeta: testMeta("db"),
		Spec: appsv1.StatefulSetSpec{
			Selector:    webSelector(),
			ServiceName: "db",
			Template:    tmpl,
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{
				ObjectMeta: metav1.ObjectMeta{Name: "data"},
				Spec: corev1.PersistentVolumeClaimSpec{
					AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					Resources: corev1.VolumeResourceRequirements{
						Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
					},
				},
			}},
		},
	}
}

func TestStatefulSetDefaults(t *testing.T) {
	s := testStatefulSet()
	statefulsets().Default(s)
	spec := s.Spec

	if *spec.Replicas != 1 || *spec.RevisionHistoryLimit != 10 {
		t.Errorf("replicas %d, revisionHistoryLimit %d; want 1, 10", *spec.Replicas, *spec.RevisionHistoryLimit)
	}
	if spec.PodManagementPolicy != appsv1.OrderedReadyPodManagement {
		t.Errorf("podManagementPolicy = %q", spec.PodManagementPolicy)
	}
	if u := spec.UpdateStrategy; u.Type != appsv1.RollingUpdateStatefulSetStrategyType || u.RollingUpdate == nil ||
		u.RollingUpdate.Partition == nil || *u.RollingUpdate.Partition != 0 {
		t.Errorf("updateStrategy = %+v, want RollingUpdate with partition 0", u)
	}
	if p := spec.PersistentVolumeClaimRetentionPolicy; p == nil ||
		p.WhenDeleted != appsv1.RetainPersistentVolumeClaimRetentionPolicyType || p.WhenScaled != appsv1.RetainPersistentVolumeClaimRetentionPolicyType {
		t.Errorf("persistentVolumeClaimRetentionPolicy = %+v, want Retain/Retain", p)
	}
	claim := spec.VolumeClaimTemplates[0]
	if claim.Spec.VolumeMode == nil || *claim.Spec.VolumeMode != corev1.PersistentVolumeFilesystem || claim.Status.Phase != corev1.ClaimPending {
		t.Errorf("claim template volumeMode %v, phase %q; want Filesystem, Pending", claim.Spec.VolumeMode, claim.Status.Phase)
	}
}

func TestStatefulSetValidation(t *testing.T) {
	badPolicy := testStatefulSet()
	badPolicy.Spec.PodManagementPolicy = "Random"

	dottedName := testStatefulSet()
	dottedName.Name = "db.primary"

	onDeleteWithRollingUpdate := testStatefulSet()
	onDeleteWithRollingUpdate.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{
		Type:          appsv1.OnDeleteStatefulSetStrategyType,
		RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{},
	}

	runCheckCases(t, []checkCase{
		{"pod management policy", statefulsets(), badPolicy,
			"spec.podManagementPolicy", field.ErrorTypeInvalid, "must be 'OrderedReady' or 'Parallel'"},
		// Pod names double as hostnames.
		{"name is a DNS label", statefulsets(), dottedName, "metadata.name", field.ErrorTypeInvalid, "must not contain dots"},
		{"rollingUpdate only with RollingUpdate", statefulsets(), onDeleteWithRollingUpdate,
			"spec.updateStrategy.rollingUpdate", field.ErrorTypeInvalid, "only allowed for updateStrategy 'RollingUpdate'"},
	})
}

func TestStatefulSetUpdateOnlyChangesMutableFields(t *testing.T) {
	const forbidden = "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', " +
		"'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"

	scaled := testStatefulSet()
	scaled.Spec.Replicas = new(int32(3))
	scaled.Spec.Template.Spec.Containers[0].Image = "nginx:1.28"
	if errs := updateErrors(statefulsets(), scaled, testStatefulSet()); len(errs) > 0 {
		t.Errorf("scaling and a new image rejected: %v", errs)
	}

	renamed := testStatefulSet()
	renamed.Spec.ServiceName = "db-headless"
	errs := updateErrors(statefulsets(), renamed, testStatefulSet())
	if findFieldError(errs, "spec", field.ErrorTypeForbidden, forbidden) == nil {
		t.Errorf("serviceName change: want %q, got %v", forbidden, errs)
	}

	grown := testStatefulSet()
	grown.Spec.VolumeClaimTemplates[0].Spec.Resources.Requests[corev1.ResourceStorage] = resource.MustParse("2Gi")
	if errs := updateErrors(statefulsets(), grown, testStatefulSet()); findFieldError(errs, "spec", field.ErrorTypeForbidden, forbidden) == nil {
		t.Errorf("claim template change accepted: %v", errs)
	}
}

func TestStatefulSetTableShowsReadyOfDesired(t *testing.T) {
	s := testStatefulSet()
	s.Spec.Replicas = new(int32(3))
	s.Status.ReadyReplicas = 1
	if got := statefulsets().Table.Cells(s)[0]; got != "1/3" {
		t.Errorf("Ready = %v, want 1/3", got)
	}
}

// A status write is checked as kube-apiserver checks it: counts at least
// 0 and within status.replicas, available within ready, and a collision
// count that never goes down.
func TestStatefulSetStatusWritesAreValidated(t *testing.T) {
	r := statefulsets()
	old := &appsv1.StatefulSet{Status: appsv1.StatefulSetStatus{Replicas: 3, CollisionCount: new(int32(2))}}
	for _, tc := range []struct {
		name   string
		status appsv1.StatefulSetStatus
		want   string // the field in error; "" for none
	}{
		{"consistent", appsv1.StatefulSetStatus{Replicas: 3, ReadyReplicas: 3, AvailableReplicas: 2, CollisionCount: new(int32(2))}, ""},
		{"negative", appsv1.StatefulSetStatus{Replicas: -1, CollisionCount: new(int32(2))}, "status.replicas"},
		{"more ready than replicas", appsv1.StatefulSetStatus{Replicas: 1, ReadyReplicas: 2, CollisionCount: new(int32(2))}, "status.readyReplicas"},
		{"more available than ready", appsv1.StatefulSetStatus{Replicas: 3, ReadyReplicas: 1, AvailableReplicas: 2, CollisionCount: new(int32(2))}, "status.availableReplicas"},
		{"collision count lowered", appsv1.StatefulSetStatus{Replicas: 3, CollisionCount: new(int32(1))}, "status.collisionCount"},
	} {
		errs := r.ValidateStatus(&appsv1.StatefulSet{Status: tc.status}, old)
		switch {
		case tc.want == "" && len(errs) > 0:
			t.Errorf("%s: %v", tc.name, errs)
		case tc.want != "" && (len(errs) == 0 || errs[0].Field != tc.want):
			t.Errorf("%s: errors %v, want one on %s", tc.name, errs, tc.want)
		}
	}
}

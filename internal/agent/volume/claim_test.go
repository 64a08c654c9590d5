package volume

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// fakeClaims stands for the API server's claims and volumes.
type fakeClaims struct {
	claims  map[string]*corev1.PersistentVolumeClaim // by "namespace/name"
	volumes map[string]*corev1.PersistentVolume
	nodes   map[string]*corev1.Node
}

func (f *fakeClaims) Node(_ context.Context, name string) (*corev1.Node, error) {
	if n, ok := f.nodes[name]; ok {
		return n.DeepCopy(), nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "nodes"}, name)
}

func (f *fakeClaims) PersistentVolumeClaim(_ context.Context, namespace, name string) (*corev1.PersistentVolumeClaim, error) {
	if c, ok := f.claims[namespace+"/"+name]; ok {
		return c.DeepCopy(), nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "persistentvolumeclaims"}, name)
}

func (f *fakeClaims) PersistentVolume(_ context.Context, name string) (*corev1.PersistentVolume, error) {
	if v, ok := f.volumes[name]; ok {
		return v.DeepCopy(), nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "persistentvolumes"}, name)
}

func claimVolume(readOnly bool) corev1.Volume {
	return corev1.Volume{Name: "data", VolumeSource: corev1.VolumeSource{
		PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data", ReadOnly: readOnly}}}
}

func TestClaimVolumeResolvesToBoundVolumesDirectory(t *testing.T) {
	m, _ := newManager(t)
	dir := filepath.Join(t.TempDir(), "storage", "pvc-1_default_data")
	create := corev1.HostPathDirectoryOrCreate
	m.Claims = &fakeClaims{
		claims: map[string]*corev1.PersistentVolumeClaim{"default/data": {
			ObjectMeta: metav1.ObjectMeta{Name: "data", Namespace: "default", UID: "claim-uid"},
			Spec:       corev1.PersistentVolumeClaimSpec{VolumeName: "pvc-1"},
			Status:     corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound},
		}},
		volumes: map[string]*corev1.PersistentVolume{"pvc-1": {
			ObjectMeta: metav1.ObjectMeta{Name: "pvc-1"},
			Spec: corev1.PersistentVolumeSpec{
				ClaimRef:               &corev1.ObjectReference{Namespace: "default", Name: "data", UID: "claim-uid"},
				PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: dir, Type: &create}},
			},
		}},
	}
	paths := mustSetup(t, m, newPod("uid-1", claimVolume(false)))
	if paths["data"] != dir {
		t.Fatalf("path = %q, want %q", paths["data"], dir)
	}
	if info, err := os.Stat(dir); err != nil || !info.IsDir() {
		t.Fatalf("volume directory not made: %v", err)
	}
}

// A local-path volume's directory, made on first use, is open to any
// user (non-root pods write to it); one that exists keeps its mode.
func TestLocalPathVolumeDirectoryIsOpenToAnyUser(t *testing.T) {
	m, _ := newManager(t)
	dir := filepath.Join(t.TempDir(), "storage", "pvc-1_default_data")
	create := corev1.HostPathDirectoryOrCreate
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "pvc-1", Annotations: map[string]string{"pv.kubernetes.io/provisioned-by": "rancher.io/local-path"}},
		Spec: corev1.PersistentVolumeSpec{
			ClaimRef:               &corev1.ObjectReference{Namespace: "default", Name: "data", UID: "claim-uid"},
			PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: dir, Type: &create}},
		}}
	m.Claims = &fakeClaims{
		claims: map[string]*corev1.PersistentVolumeClaim{"default/data": {
			ObjectMeta: metav1.ObjectMeta{Name: "data", Namespace: "default", UID: "claim-uid"},
			Spec:       corev1.PersistentVolumeClaimSpec{VolumeName: "pvc-1"},
			Status:     corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound},
		}},
		volumes: map[string]*corev1.PersistentVolume{"pvc-1": pv},
	}
	mustSetup(t, m, newPod("uid-1", claimVolume(false)))
	if info, err := os.Stat(dir); err != nil || info.Mode().Perm() != 0o777 {
		t.Fatalf("new local-path directory: %v, %v; want mode 0777", info.Mode(), err)
	}
	os.Chmod(dir, 0o750)
	mustSetup(t, m, newPod("uid-2", claimVolume(false)))
	if info, _ := os.Stat(dir); info.Mode().Perm() != 0o750 {
		t.Errorf("an existing directory's mode changed to %v", info.Mode().Perm())
	}
}

// A volume whose node affinity names another node is not mounted: the
// directory it names is not this node's (the kubelet's NodeAffinity check).
func TestClaimVolumeOfAnotherNodeIsRefused(t *testing.T) {
	m, _ := newManager(t)
	dir := filepath.Join(t.TempDir(), "storage", "pvc-1_default_data")
	create := corev1.HostPathDirectoryOrCreate
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "pvc-1"},
		Spec: corev1.PersistentVolumeSpec{
			ClaimRef:               &corev1.ObjectReference{Namespace: "default", Name: "data", UID: "claim-uid"},
			PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: dir, Type: &create}},
			NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchExpressions: []corev1.NodeSelectorRequirement{{Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{"other"}}}}}}},
		}}
	m.Claims = &fakeClaims{
		claims: map[string]*corev1.PersistentVolumeClaim{"default/data": {
			ObjectMeta: metav1.ObjectMeta{Name: "data", Namespace: "default", UID: "claim-uid"},
			Spec:       corev1.PersistentVolumeClaimSpec{VolumeName: "pvc-1"},
			Status:     corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound},
		}},
		volumes: map[string]*corev1.PersistentVolume{"pvc-1": pv},
		nodes: map[string]*corev1.Node{
			"here":  {ObjectMeta: metav1.ObjectMeta{Name: "here", Labels: map[string]string{corev1.LabelHostname: "here"}}},
			"other": {ObjectMeta: metav1.ObjectMeta{Name: "other", Labels: map[string]string{corev1.LabelHostname: "other"}}},
		},
	}
	pod := newPod("uid-1", claimVolume(false))
	pod.Spec.NodeName = "here"
	if _, err := setup(t, m, pod); err == nil || !strings.Contains(err.Error(), "node affinity check failed") {
		t.Fatalf("error = %v, want the node affinity check to fail", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the other node's directory was made here: %v", err)
	}
	pod = newPod("uid-2", claimVolume(false))
	pod.Spec.NodeName = "other"
	if paths := mustSetup(t, m, pod); paths["data"] != dir {
		t.Errorf("on its own node: path %q, want %q", paths["data"], dir)
	}
}

// A pod is not started on a claim being deleted (storage protection lets
// such a claim go once no scheduled pod uses it); one that started before
// keeps its volume.
func TestClaimBeingDeletedStartsNoNewPod(t *testing.T) {
	m, _ := newManager(t)
	dir := filepath.Join(t.TempDir(), "data")
	create := corev1.HostPathDirectoryOrCreate
	claim := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "data", Namespace: "default", UID: "claim-uid"},
		Spec:       corev1.PersistentVolumeClaimSpec{VolumeName: "pv-1"},
		Status:     corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound},
	}
	claims := &fakeClaims{
		claims: map[string]*corev1.PersistentVolumeClaim{"default/data": claim},
		volumes: map[string]*corev1.PersistentVolume{"pv-1": {ObjectMeta: metav1.ObjectMeta{Name: "pv-1"},
			Spec: corev1.PersistentVolumeSpec{ClaimRef: &corev1.ObjectReference{Namespace: "default", Name: "data", UID: "claim-uid"},
				PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: dir, Type: &create}}}}},
	}
	m.Claims = claims
	running := newPod("uid-running", claimVolume(false))
	mustSetup(t, m, running)

	claim.DeletionTimestamp = &metav1.Time{}
	if _, err := setup(t, m, newPod("uid-new", claimVolume(false))); err == nil || !strings.Contains(err.Error(), "can't start pod because PVC default/data is being deleted") {
		t.Fatalf("a new pod on a claim being deleted: %v", err)
	}
	if paths := mustSetup(t, m, running); paths["data"] != dir {
		t.Errorf("the running pod's volume: %v, want %s", paths, dir)
	}
}

func TestUnboundClaimVolumeWaits(t *testing.T) {
	m, _ := newManager(t)
	m.Claims = &fakeClaims{claims: map[string]*corev1.PersistentVolumeClaim{"default/data": {
		ObjectMeta: metav1.ObjectMeta{Name: "data", Namespace: "default"},
		Status:     corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimPending},
	}}}
	_, err := setup(t, m, newPod("uid-1", claimVolume(false)))
	if err == nil || !strings.Contains(err.Error(), "error processing PVC default/data: PVC is not bound") {
		t.Fatalf("error = %v, want the claim to be reported unbound", err)
	}
	m.Claims = &fakeClaims{}
	_, err = setup(t, m, newPod("uid-2", claimVolume(false)))
	if err == nil || !strings.Contains(err.Error(), `persistentvolumeclaims "data" not found`) {
		t.Fatalf("error = %v, want the claim reported missing", err)
	}
}

func TestReadOnlyClaimIsMountedReadOnly(t *testing.T) {
	if !ReadOnly(claimVolume(true)) || ReadOnly(claimVolume(false)) {
		t.Fatal("ReadOnly must follow the claim volume's readOnly")
	}
}

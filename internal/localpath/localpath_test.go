package localpath

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
)

// volume is a local-path volume named name on node, in phase, whose
// directory is made in dir unless path names another.
func volume(t *testing.T, dir, name, node string, phase corev1.PersistentVolumePhase, policy corev1.PersistentVolumeReclaimPolicy) *corev1.PersistentVolume {
	t.Helper()
	path := VolumeDir(dir, name, "default", "data")
	if err := os.MkdirAll(path, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(path, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	return &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("uid-" + name), Annotations: map[string]string{AnnProvisionedBy: Provisioner}},
		Spec: corev1.PersistentVolumeSpec{
			PersistentVolumeReclaimPolicy: policy,
			PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: path}},
			NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchExpressions: []corev1.NodeSelectorRequirement{{Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{node}}},
			}}}},
		},
		Status: corev1.PersistentVolumeStatus{Phase: phase},
	}
}

func TestReclaimerRemovesOnlyThisNodesReleasedDeleteVolumes(t *testing.T) {
	dir := t.TempDir()
	due := volume(t, dir, "pvc-due", "n1", corev1.VolumeReleased, corev1.PersistentVolumeReclaimDelete)
	others := []*corev1.PersistentVolume{
		volume(t, dir, "pvc-other-node", "n2", corev1.VolumeReleased, corev1.PersistentVolumeReclaimDelete),
		volume(t, dir, "pvc-retained", "n1", corev1.VolumeReleased, corev1.PersistentVolumeReclaimRetain),
		volume(t, dir, "pvc-bound", "n1", corev1.VolumeBound, corev1.PersistentVolumeReclaimDelete),
	}
	client := fake.NewClientset(due, others[0], others[1], others[2])
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		(&Reclaimer{Client: client, NodeName: "n1", Dir: dir}).Run(ctx)
		close(done)
	}()
	defer func() { cancel(); <-done }()

	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := client.CoreV1().PersistentVolumes().Get(ctx, "pvc-due", metav1.GetOptions{})
		if err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the released volume of this node was not deleted")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := os.Stat(due.Spec.HostPath.Path); !os.IsNotExist(err) {
		t.Errorf("directory of the reclaimed volume: %v, want it gone", err)
	}
	// The others are not this node's to reclaim, or not to be reclaimed.
	time.Sleep(100 * time.Millisecond)
	for _, pv := range others {
		if _, err := client.CoreV1().PersistentVolumes().Get(ctx, pv.Name, metav1.GetOptions{}); err != nil {
			t.Errorf("volume %s: %v, want it kept", pv.Name, err)
		}
		if _, err := os.Stat(filepath.Join(pv.Spec.HostPath.Path, "f")); err != nil {
			t.Errorf("data of %s: %v, want it kept", pv.Name, err)
		}
	}
}

func TestRemoveRefusesPathsOutsideTheDirectory(t *testing.T) {
	dir := t.TempDir()
	outside := t.TempDir()
	for _, tc := range []struct{ name, path string }{
		{"another directory", filepath.Join(outside, "pvc-x_default_data")},
		{"the directory itself", dir},
		{"a path climbing out", dir + "/../" + filepath.Base(outside) + "/pvc-x_default_data"},
		{"a directory named for another volume", filepath.Join(dir, "pvc-y_default_data")},
		{"a nested directory", filepath.Join(dir, "pvc-x_default_data", "sub")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pv := &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pvc-x", Annotations: map[string]string{AnnProvisionedBy: Provisioner}},
				Spec: corev1.PersistentVolumeSpec{PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: tc.path}}}}
			err := Remove(dir, pv)
			if err == nil || !strings.Contains(err.Error(), "not a local-path directory") {
				t.Errorf("Remove(%s) = %v, want a refusal", tc.path, err)
			}
		})
	}
	if _, err := os.Stat(dir); err != nil {
		t.Errorf("the local-path directory itself: %v", err)
	}
}

func TestNodeDirIsTheNodesCleanAbsoluteAnnotation(t *testing.T) {
	for _, tc := range []struct{ annotation, want string }{
		{"/var/lib/skiff/storage", "/var/lib/skiff/storage"},
		{"", "/fallback"},
		{"relative/storage", "/fallback"},
		{"/var/lib/../skiff", "/fallback"},
	} {
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{NodeDirAnnotation: tc.annotation}}}
		if got := NodeDir(node, "/fallback"); got != tc.want {
			t.Errorf("NodeDir(%q) = %q, want %q", tc.annotation, got, tc.want)
		}
	}
}

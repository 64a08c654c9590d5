package persistentvolume

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-sh/skiff/internal/localpath"
)

// newTestController preloads objs into the fake API and the listers.
func newTestController(t *testing.T, objs ...runtime.Object) (*Controller, *fake.Clientset, *record.FakeRecorder) {
	t.Helper()
	client := fake.NewClientset(objs...)
	factory := informers.NewSharedInformerFactory(client, 0)
	rec := record.NewFakeRecorder(100)
	c := New(Config{DataDir: t.TempDir()}, client, factory, rec, nil)
	for _, o := range objs {
		var inf cache.SharedIndexInformer
		switch o.(type) {
		case *corev1.PersistentVolume:
			inf = factory.Core().V1().PersistentVolumes().Informer()
		case *corev1.PersistentVolumeClaim:
			inf = factory.Core().V1().PersistentVolumeClaims().Informer()
		case *storagev1.StorageClass:
			inf = factory.Storage().V1().StorageClasses().Informer()
		case *corev1.Node:
			inf = factory.Core().V1().Nodes().Informer()
		}
		if err := inf.GetIndexer().Add(o); err != nil {
			t.Fatal(err)
		}
	}
	client.ClearActions()
	return c, client, rec
}

func writes(client *fake.Clientset) []string {
	var out []string
	for _, a := range client.Actions() {
		if a.GetVerb() == "get" || a.GetVerb() == "list" || a.GetVerb() == "watch" {
			continue
		}
		s := a.GetVerb() + " " + a.GetResource().Resource
		if a.GetSubresource() != "" {
			s += "/" + a.GetSubresource()
		}
		out = append(out, s)
	}
	return out
}

func testVolume(name, size string) *corev1.PersistentVolume {
	return &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeSpec{StorageClassName: "manual", AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}},
		Status: corev1.PersistentVolumeStatus{Phase: corev1.VolumeAvailable}}
}

func testClaim(class string) *corev1.PersistentVolumeClaim {
	return &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "data", Namespace: "default", UID: "claim-uid"},
		Spec: corev1.PersistentVolumeClaimSpec{StorageClassName: &class, AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}}
}

func TestBindingWritesVolumeThenClaim(t *testing.T) {
	c, client, _ := newTestController(t, testClaim("manual"), testVolume("big", "10Gi"), testVolume("fits", "2Gi"))
	if err := c.syncClaim(context.Background(), "default", "data"); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(writes(client), ", ")
	want := "update persistentvolumes, update persistentvolumes/status, update persistentvolumeclaims, update persistentvolumeclaims/status"
	if got != want {
		t.Fatalf("writes = %s\nwant     %s", got, want)
	}
	pv, _ := client.CoreV1().PersistentVolumes().Get(context.Background(), "fits", metav1.GetOptions{})
	if pv.Spec.ClaimRef == nil || pv.Spec.ClaimRef.UID != "claim-uid" || pv.Annotations[AnnBoundByController] != "yes" || pv.Status.Phase != corev1.VolumeBound {
		t.Errorf("volume = %+v", pv)
	}
	pvc, _ := client.CoreV1().PersistentVolumeClaims("default").Get(context.Background(), "data", metav1.GetOptions{})
	if pvc.Spec.VolumeName != "fits" || pvc.Annotations[AnnBindCompleted] != "yes" || pvc.Status.Phase != corev1.ClaimBound {
		t.Errorf("claim = %+v", pvc)
	}
}

func TestWaitForFirstConsumerClaimWaitsForSelectedNode(t *testing.T) {
	wait := storagev1.VolumeBindingWaitForFirstConsumer
	class := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: DefaultClass}, Provisioner: Provisioner, VolumeBindingMode: &wait}
	c, client, rec := newTestController(t, testClaim(DefaultClass), class)
	if err := c.syncClaim(context.Background(), "default", "data"); err != nil {
		t.Fatal(err)
	}
	if got := writes(client); len(got) != 1 || got[0] != "update persistentvolumeclaims/status" {
		t.Fatalf("writes = %v, want the claim's Pending status only", got)
	}
	if e := <-rec.Events; !strings.Contains(e, ReasonWaitForFirstConsumer) {
		t.Errorf("event = %q", e)
	}
}

func TestProvisioningOnSelectedNode(t *testing.T) {
	for _, tc := range []struct {
		name, nodeDir, want string
	}{
		{"in the directory the node publishes", "/var/lib/skiff-n1/storage", "/var/lib/skiff-n1/storage/pvc-claim-uid_default_data"},
		{"in the server's own when the node says nothing", "", ""},
		{"in the server's own when the node's is not absolute", "relative/storage", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wait := storagev1.VolumeBindingWaitForFirstConsumer
			class := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: DefaultClass}, Provisioner: Provisioner, VolumeBindingMode: &wait}
			pvc := testClaim(DefaultClass)
			pvc.Annotations = map[string]string{AnnSelectedNode: "n1"}
			node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: map[string]string{corev1.LabelHostname: "n1"}}}
			if tc.nodeDir != "" {
				node.Annotations = map[string]string{localpath.NodeDirAnnotation: tc.nodeDir}
			}
			c, client, _ := newTestController(t, pvc, class, node)
			if tc.want == "" {
				tc.want = c.storageDir() + "/pvc-claim-uid_default_data"
			}
			if err := c.syncClaim(context.Background(), "default", "data"); err != nil {
				t.Fatal(err)
			}
			pv, err := client.CoreV1().PersistentVolumes().Get(context.Background(), "pvc-claim-uid", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if pv.Spec.HostPath == nil || pv.Spec.HostPath.Path != tc.want ||
				pv.Spec.ClaimRef == nil || pv.Spec.ClaimRef.UID != "claim-uid" || localpath.NodeOf(pv) != "n1" ||
				pv.Annotations[AnnProvisionedBy] != Provisioner {
				t.Errorf("provisioned volume = %+v, want path %s", pv, tc.want)
			}
		})
	}
}

// A released volume is kept (Retain) or left to its node's agent to
// delete (Delete), also while that node is gone. The controller itself
// never touches the data.
func TestReleasedVolumeIsRetainedOrLeftToItsNode(t *testing.T) {
	for _, tc := range []struct {
		name      string
		policy    corev1.PersistentVolumeReclaimPolicy
		nodeThere bool
		writes    string
		phase     corev1.PersistentVolumePhase
	}{
		{"retain", corev1.PersistentVolumeReclaimRetain, true, "update persistentvolumes/status", corev1.VolumeReleased},
		{"delete on a node", corev1.PersistentVolumeReclaimDelete, true, "update persistentvolumes/status", corev1.VolumeReleased},
		// Released still: the node may come back and its agent reclaim it.
		{"delete on a node that is gone", corev1.PersistentVolumeReclaimDelete, false, "update persistentvolumes/status", corev1.VolumeReleased},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "v_default_gone")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			pv := testVolume("v", "1Gi")
			pv.Annotations = map[string]string{AnnProvisionedBy: Provisioner}
			pv.Spec.PersistentVolumeReclaimPolicy = tc.policy
			pv.Spec.ClaimRef = &corev1.ObjectReference{Namespace: "default", Name: "gone", UID: "gone-uid"}
			pv.Spec.HostPath = &corev1.HostPathVolumeSource{Path: dir}
			pv.Spec.NodeAffinity = &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchExpressions: []corev1.NodeSelectorRequirement{{Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{"n1"}}}}}}}
			pv.Status.Phase = corev1.VolumeBound
			objs := []runtime.Object{pv}
			if tc.nodeThere {
				objs = append(objs, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}})
			}
			c, client, _ := newTestController(t, objs...)
			if err := c.syncVolume(context.Background(), "v"); err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(writes(client), ", "); got != tc.writes {
				t.Errorf("writes = %s, want %s", got, tc.writes)
			}
			got, err := client.CoreV1().PersistentVolumes().Get(context.Background(), "v", metav1.GetOptions{})
			if err != nil || got.Status.Phase != tc.phase {
				t.Errorf("volume = %+v, %v; want phase %s", got, err, tc.phase)
			}
			if _, err := os.Stat(dir); err != nil {
				t.Errorf("the controller touched the data directory: %v", err)
			}
		})
	}
}

// A volume pre-bound to a WaitForFirstConsumer claim binds at once: the
// claim does not wait for a node, nor get a new, empty volume.
func TestWaitForFirstConsumerClaimTakesItsPreboundVolumeAtOnce(t *testing.T) {
	wait := storagev1.VolumeBindingWaitForFirstConsumer
	class := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: DefaultClass}, Provisioner: Provisioner, VolumeBindingMode: &wait}
	pv := testVolume("mine", "1Gi")
	pv.Spec.StorageClassName = DefaultClass
	pv.Spec.ClaimRef = &corev1.ObjectReference{Namespace: "default", Name: "data"}
	c, client, _ := newTestController(t, testClaim(DefaultClass), class, pv)
	if err := c.syncClaim(context.Background(), "default", "data"); err != nil {
		t.Fatal(err)
	}
	pvc, _ := client.CoreV1().PersistentVolumeClaims("default").Get(context.Background(), "data", metav1.GetOptions{})
	if pvc.Spec.VolumeName != "mine" || pvc.Status.Phase != corev1.ClaimBound {
		t.Errorf("claim = %+v, want bound to its pre-bound volume", pvc)
	}
}

// A claim that names an unclaimed volume in spec.volumeName binds it only
// if it fits, else waits with VolumeMismatch.
func TestNamedVolumeMustFitTheClaim(t *testing.T) {
	pvc := testClaim("manual")
	pvc.Spec.VolumeName = "small"
	c, client, rec := newTestController(t, pvc, testVolume("small", "500Mi"))
	if err := c.syncClaim(context.Background(), "default", "data"); err != nil {
		t.Fatal(err)
	}
	if got := writes(client); len(got) != 1 || got[0] != "update persistentvolumeclaims/status" {
		t.Fatalf("writes = %v, want the claim's Pending status only", got)
	}
	if e := <-rec.Events; !strings.Contains(e, `VolumeMismatch Cannot bind to requested volume "small": requested PV is too small`) {
		t.Errorf("event = %q", e)
	}
}

// A claim of an external provisioner's class is annotated with it, which
// is what such a provisioner waits for; its volumes are its to delete.
func TestExternalProvisionerIsNamedOnTheClaimAndDeletesItsVolumes(t *testing.T) {
	class := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "ebs"}, Provisioner: "ebs.csi.aws.com"}
	c, client, rec := newTestController(t, testClaim("ebs"), class)
	if err := c.syncClaim(context.Background(), "default", "data"); err != nil {
		t.Fatal(err)
	}
	pvc, _ := client.CoreV1().PersistentVolumeClaims("default").Get(context.Background(), "data", metav1.GetOptions{})
	if pvc.Annotations[AnnStorageProvisioner] != "ebs.csi.aws.com" || pvc.Annotations[AnnBetaStorageProvisioner] != "ebs.csi.aws.com" {
		t.Errorf("claim annotations = %v", pvc.Annotations)
	}
	if e := <-rec.Events; !strings.Contains(e, ReasonExternalProvisioning) {
		t.Errorf("event = %q", e)
	}

	pv := testVolume("pvc-x", "1Gi")
	pv.Annotations = map[string]string{AnnProvisionedBy: "ebs.csi.aws.com"}
	pv.Spec.PersistentVolumeReclaimPolicy = corev1.PersistentVolumeReclaimDelete
	pv.Spec.ClaimRef = &corev1.ObjectReference{Namespace: "default", Name: "gone", UID: "gone-uid"}
	pv.Status.Phase = corev1.VolumeBound
	c, client, _ = newTestController(t, pv)
	if err := c.syncVolume(context.Background(), "pvc-x"); err != nil {
		t.Fatal(err)
	}
	got, _ := client.CoreV1().PersistentVolumes().Get(context.Background(), "pvc-x", metav1.GetOptions{})
	if got.Status.Phase != corev1.VolumeReleased {
		t.Errorf("external volume phase %s, want Released for its provisioner to delete", got.Status.Phase)
	}
}

// A volume provisioned for a claim that then bound another volume is not
// needed: it is released and reclaimed.
func TestProvisionedVolumeOfAClaimBoundElsewhereIsReclaimed(t *testing.T) {
	pvc := testClaim("manual")
	pvc.Spec.VolumeName = "other"
	pv := testVolume("spare", "1Gi")
	pv.Annotations = map[string]string{AnnProvisionedBy: "ebs.csi.aws.com"}
	pv.Spec.PersistentVolumeReclaimPolicy = corev1.PersistentVolumeReclaimDelete
	pv.Spec.ClaimRef = &corev1.ObjectReference{Namespace: "default", Name: "data", UID: "claim-uid"}
	pv.Status.Phase = corev1.VolumeBound
	c, client, _ := newTestController(t, pvc, pv)
	if err := c.syncVolume(context.Background(), "spare"); err != nil {
		t.Fatal(err)
	}
	got, _ := client.CoreV1().PersistentVolumes().Get(context.Background(), "spare", metav1.GetOptions{})
	if got.Status.Phase != corev1.VolumeReleased {
		t.Errorf("phase %s, want Released", got.Status.Phase)
	}
}

// Lost is announced once, not at every resync.
func TestClaimLostIsAnnouncedOnce(t *testing.T) {
	pvc := testClaim("manual")
	pvc.Spec.VolumeName = "gone"
	pvc.Annotations = map[string]string{AnnBindCompleted: "yes"}
	pvc.Status.Phase = corev1.ClaimLost
	c, _, rec := newTestController(t, pvc)
	if err := c.syncClaim(context.Background(), "default", "data"); err != nil {
		t.Fatal(err)
	}
	if len(rec.Events) != 0 {
		t.Errorf("event again for a claim already Lost: %q", <-rec.Events)
	}
}

// A claim that loses its volume loses the volume's modes and capacity
// from its status too.
func TestLostClaimHasNoCapacity(t *testing.T) {
	pvc := testClaim("manual")
	pvc.Spec.VolumeName = "gone"
	pvc.Annotations = map[string]string{AnnBindCompleted: "yes"}
	pvc.Status = corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound, AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
		Capacity: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}
	c, client, _ := newTestController(t, pvc)
	if err := c.syncClaim(context.Background(), "default", "data"); err != nil {
		t.Fatal(err)
	}
	got, _ := client.CoreV1().PersistentVolumeClaims("default").Get(context.Background(), "data", metav1.GetOptions{})
	if got.Status.Phase != corev1.ClaimLost || got.Status.Capacity != nil || got.Status.AccessModes != nil {
		t.Errorf("status %+v, want Lost with no capacity or modes", got.Status)
	}
}

func TestLocalPathRefusesBlockVolumes(t *testing.T) {
	wait := storagev1.VolumeBindingWaitForFirstConsumer
	class := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: DefaultClass}, Provisioner: Provisioner, VolumeBindingMode: &wait}
	pvc := testClaim(DefaultClass)
	block := corev1.PersistentVolumeBlock
	pvc.Spec.VolumeMode = &block
	pvc.Annotations = map[string]string{AnnSelectedNode: "n1"}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}
	c, _, rec := newTestController(t, pvc, class, node)
	if err := c.syncClaim(context.Background(), "default", "data"); err == nil {
		t.Fatal("a block claim was provisioned")
	}
	if e := <-rec.Events; !strings.Contains(e, "ProvisioningFailed") || !strings.Contains(e, "does not support block volume provisioning") {
		t.Errorf("event = %q", e)
	}
}

package e2e

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// claimPod is a pod that runs script with the claim mounted at /data.
func claimPod(name, claim, script string, readOnly bool) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever,
			Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim, ReadOnly: readOnly}}}},
			Containers: []corev1.Container{{Name: "main", Image: testImage, Command: []string{"sh", "-c", script},
				VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}}}}}
}

func newClaim(name string, class *string, size string, modes ...corev1.PersistentVolumeAccessMode) *corev1.PersistentVolumeClaim {
	return &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeClaimSpec{StorageClassName: class, AccessModes: modes,
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}}}}
}

func deletePodAndWait(t *testing.T, c kubernetes.Interface, ns, name string) {
	t.Helper()
	ctx := context.Background()
	if err := c.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, func() error {
		if _, err := c.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return errorf("pod %s still there (%v)", name, err)
		}
		return nil
	})
}

// waitDefaultClass checks for the default StorageClass, which the server
// makes before it reports ready.
func waitDefaultClass(t *testing.T, c kubernetes.Interface) {
	t.Helper()
	if _, err := c.StorageV1().StorageClasses().Get(context.Background(), "local-path", metav1.GetOptions{}); err != nil {
		t.Fatalf("default storage class once the server is ready: %v", err)
	}
}

// deleteClaimAndWaitForItsData deletes claim, then waits until its volume
// and the volume's data directory are gone (reclaim policy Delete).
func deleteClaimAndWaitForItsData(t *testing.T, c kubernetes.Interface, claim, volume, dir string) {
	t.Helper()
	ctx := context.Background()
	if err := c.CoreV1().PersistentVolumeClaims("default").Delete(ctx, claim, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, func() error {
		if _, err := c.CoreV1().PersistentVolumes().Get(ctx, volume, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return errorf("volume %s still there (%v)", volume, err)
		}
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			return errorf("data directory %s still there (%v)", dir, err)
		}
		return nil
	})
}

func hasEvent(c kubernetes.Interface, ns, name, reason string) bool {
	list, err := c.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		return false
	}
	for _, e := range list.Items {
		if e.InvolvedObject.Name == name && e.Reason == reason {
			return true
		}
	}
	return false
}

func TestLocalPathClaimBindsOnFirstConsumerAndKeepsDataUntilDeleted(t *testing.T) {
	s, c := startAgentServer(t)
	ctx := context.Background()

	// The default class is there as soon as the server is ready.
	sc, err := c.StorageV1().StorageClasses().Get(ctx, "local-path", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("default class right after start: %v", err)
	}
	if sc.Provisioner != "rancher.io/local-path" || sc.Annotations["storageclass.kubernetes.io/is-default-class"] != "true" ||
		sc.VolumeBindingMode == nil || *sc.VolumeBindingMode != "WaitForFirstConsumer" ||
		sc.ReclaimPolicy == nil || *sc.ReclaimPolicy != corev1.PersistentVolumeReclaimDelete {
		t.Fatalf("default class = %+v", sc)
	}
	pvc, err := c.CoreV1().PersistentVolumeClaims("default").Create(ctx, newClaim("data", nil, "100Mi", corev1.ReadWriteOnce), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pvc.Spec.StorageClassName == nil || *pvc.Spec.StorageClassName != "local-path" {
		t.Fatalf("claim class = %v, want the default local-path", pvc.Spec.StorageClassName)
	}
	// Without a consumer the claim waits.
	eventually(t, 30*time.Second, func() error {
		if !hasEvent(c, "default", "data", "WaitForFirstConsumer") {
			return errorf("no WaitForFirstConsumer event on the claim")
		}
		return nil
	})
	time.Sleep(2 * time.Second)
	pvc, err = c.CoreV1().PersistentVolumeClaims("default").Get(ctx, "data", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pvc.Status.Phase != corev1.ClaimPending || pvc.Spec.VolumeName != "" {
		t.Fatalf("claim without a consumer: phase %q, volume %q; want Pending and unbound", pvc.Status.Phase, pvc.Spec.VolumeName)
	}

	if _, err := c.CoreV1().Pods("default").Create(ctx, claimPod("writer", "data", "echo hello > /data/f", false), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPod(t, c, "default", "writer", 90*time.Second, "Succeeded", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded })
	pvc, err = c.CoreV1().PersistentVolumeClaims("default").Get(ctx, "data", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pvc.Status.Phase != corev1.ClaimBound || pvc.Spec.VolumeName == "" {
		t.Fatalf("claim with a consumer: phase %q, volume %q; want Bound", pvc.Status.Phase, pvc.Spec.VolumeName)
	}
	if got := pvc.Annotations["volume.kubernetes.io/selected-node"]; got != "e2e-node" {
		t.Errorf("selected-node = %q, want e2e-node", got)
	}
	for _, a := range []string{"pv.kubernetes.io/bind-completed", "pv.kubernetes.io/bound-by-controller"} {
		if pvc.Annotations[a] != "yes" {
			t.Errorf("claim annotation %s = %q, want yes", a, pvc.Annotations[a])
		}
	}
	pv, err := c.CoreV1().PersistentVolumes().Get(ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wantDir := filepath.Join(s.dataDir, "storage", pv.Name+"_default_data")
	if pv.Spec.HostPath == nil || pv.Spec.HostPath.Path != wantDir {
		t.Fatalf("volume source = %+v, want hostPath %s", pv.Spec.PersistentVolumeSource, wantDir)
	}
	if pv.Spec.NodeAffinity == nil || !strings.Contains(pv.Spec.NodeAffinity.String(), "e2e-node") {
		t.Errorf("volume node affinity = %v, want e2e-node", pv.Spec.NodeAffinity)
	}
	if pv.Status.Phase != corev1.VolumeBound || pv.Spec.ClaimRef == nil || pv.Spec.ClaimRef.UID != pvc.UID {
		t.Errorf("volume phase %q, claimRef %+v; want Bound to the claim", pv.Status.Phase, pv.Spec.ClaimRef)
	}
	if pv.Annotations["pv.kubernetes.io/provisioned-by"] != "rancher.io/local-path" {
		t.Errorf("volume annotations = %v", pv.Annotations)
	}
	if data, err := os.ReadFile(filepath.Join(wantDir, "f")); err != nil || string(data) != "hello\n" {
		t.Fatalf("file on disk = %q, %v; want hello", data, err)
	}

	// Another pod with the same claim, read-only, sees the file and
	// cannot write.
	deletePodAndWait(t, c, "default", "writer")
	reader := claimPod("reader", "data", `test "$(cat /data/f)" = hello && ! touch /data/g 2>/dev/null`, true)
	if _, err := c.CoreV1().Pods("default").Create(ctx, reader, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPod(t, c, "default", "reader", 90*time.Second, "Succeeded (file read, volume read-only)", func(p *corev1.Pod) bool {
		if p.Status.Phase == corev1.PodFailed {
			t.Fatalf("reader failed: %+v", p.Status)
		}
		return p.Status.Phase == corev1.PodSucceeded
	})

	// Deleting the claim deletes the volume and its data (reclaim Delete).
	deletePodAndWait(t, c, "default", "reader")
	deleteClaimAndWaitForItsData(t, c, "data", pv.Name, wantDir)
}

// A local-path volume lives in the data dir of the node its first pod
// runs on, and that node's agent removes it: here the server has no agent
// of its own and the node is a separate agent with a data dir of its own.
func TestLocalPathVolumeLivesAndIsRemovedOnItsOwnNode(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the node agent needs root (namespaces, cgroups, mounts, a bridge); CI runs as root, so it runs there")
	}
	s := startServer(t, withControlPlaneOnly(), withArgs("--cluster-cidr", "10.252.0.0/16", "--service-cidr", "172.30.0.0/16"))
	c := s.client()
	ctx := context.Background()
	token, err := os.ReadFile(filepath.Join(s.dataDir, "server", "node-token"))
	if err != nil {
		t.Fatal(err)
	}
	agentDir := startAgent(t, s, "remote-1", strings.TrimSpace(string(token)))
	storageDir := filepath.Join(agentDir, "storage")
	eventually(t, 30*time.Second, func() error {
		n, err := c.CoreV1().Nodes().Get(ctx, "remote-1", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if got := n.Annotations["skiff.sh/local-path-dir"]; got != storageDir {
			return errorf("node annotation skiff.sh/local-path-dir = %q, want %s", got, storageDir)
		}
		return nil
	})
	waitDefaultClass(t, c)
	if _, err := c.CoreV1().PersistentVolumeClaims("default").Create(ctx, newClaim("data", nil, "10Mi", corev1.ReadWriteOnce), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, func() error {
		_, err := c.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err
	})
	if _, err := c.CoreV1().Pods("default").Create(ctx, claimPod("writer", "data", "echo far > /data/f", false), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPod(t, c, "default", "writer", 90*time.Second, "Succeeded", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded })
	pvc, err := c.CoreV1().PersistentVolumeClaims("default").Get(ctx, "data", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pv, err := c.CoreV1().PersistentVolumes().Get(ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wantDir := filepath.Join(storageDir, pv.Name+"_default_data")
	if pv.Spec.HostPath == nil || pv.Spec.HostPath.Path != wantDir {
		t.Fatalf("volume source = %+v, want hostPath %s on the agent's node", pv.Spec.PersistentVolumeSource, wantDir)
	}
	if data, err := os.ReadFile(filepath.Join(wantDir, "f")); err != nil || string(data) != "far\n" {
		t.Fatalf("file on the node's disk = %q, %v; want far", data, err)
	}

	deletePodAndWait(t, c, "default", "writer")
	deleteClaimAndWaitForItsData(t, c, "data", pv.Name, wantDir)
}

func TestPodWithUnboundImmediateClaimIsUnschedulable(t *testing.T) {
	_, c := startAgentServer(t)
	ctx := context.Background()
	manual := "manual"
	if _, err := c.CoreV1().PersistentVolumeClaims("default").Create(ctx, newClaim("static", &manual, "1Gi", corev1.ReadWriteOnce), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CoreV1().Pods("default").Create(ctx, claimPod("waiter", "static", "true", false), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPod(t, c, "default", "waiter", 30*time.Second, "Unschedulable for its unbound claim", func(p *corev1.Pod) bool {
		for _, cond := range p.Status.Conditions {
			if cond.Type == corev1.PodScheduled && cond.Reason == corev1.PodReasonUnschedulable &&
				strings.Contains(cond.Message, "pod has unbound immediate PersistentVolumeClaims") {
				return true
			}
		}
		return false
	})
	// A matching static volume on another node: the claim binds, and the
	// pod cannot go where the volume is not.
	dir := t.TempDir()
	pv := staticVolume("elsewhere", "manual", "1Gi", corev1.PersistentVolumeReclaimRetain, corev1.ReadWriteOnce)
	pv.Spec.HostPath.Path = dir
	pv.Spec.NodeAffinity = &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
		MatchExpressions: []corev1.NodeSelectorRequirement{{Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{"other-node"}}}}}}}
	if _, err := c.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPod(t, c, "default", "waiter", 60*time.Second, "Unschedulable for volume node affinity", func(p *corev1.Pod) bool {
		for _, cond := range p.Status.Conditions {
			if cond.Type == corev1.PodScheduled && strings.Contains(cond.Message, "1 node(s) had volume node affinity conflict") {
				return true
			}
		}
		return false
	})
}

func staticVolume(name, class, size string, reclaim corev1.PersistentVolumeReclaimPolicy, modes ...corev1.PersistentVolumeAccessMode) *corev1.PersistentVolume {
	return &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeSpec{StorageClassName: class, AccessModes: modes, PersistentVolumeReclaimPolicy: reclaim,
			Capacity:               corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)},
			PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/tmp/skiff-e2e-" + name}}}}
}

func TestStaticVolumesBindByClassCapacityModesAndSelector(t *testing.T) {
	// The binder needs no node: the server runs its controllers only.
	s := &server{t: t, dataDir: t.TempDir(), port: freePort(t), args: []string{"--disable-agent", "--disable-scheduler"}}
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			t.Logf("server log:\n%s", tail(s.log.String(), 60))
		}
	})
	startNoDisable(s)
	c := s.client()
	ctx := context.Background()
	retain, del := corev1.PersistentVolumeReclaimRetain, corev1.PersistentVolumeReclaimDelete
	rwo, rox := corev1.ReadWriteOnce, corev1.ReadOnlyMany
	gold := staticVolume("big-gold", "manual", "5Gi", retain, rwo)
	gold.Labels = map[string]string{"tier": "gold"}
	for _, pv := range []*corev1.PersistentVolume{
		staticVolume("small", "manual", "1Gi", retain, rwo),
		staticVolume("mid", "manual", "2Gi", retain, rwo),
		staticVolume("mid-rox", "manual", "2Gi", retain, rox),
		staticVolume("other-class", "other", "2Gi", retain, rwo),
		staticVolume("static-delete", "manual", "3Gi", del, rwo),
		gold,
	} {
		if _, err := c.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 30*time.Second, func() error {
		pv, err := c.CoreV1().PersistentVolumes().Get(ctx, "small", metav1.GetOptions{})
		if err != nil || pv.Status.Phase != corev1.VolumeAvailable {
			return errorf("volume small not Available (%v)", err)
		}
		return nil
	})
	manual := "manual"
	fits := newClaim("fits", &manual, "1500Mi", rwo) // smallest that fits: mid, not mid-rox nor other-class
	selected := newClaim("selected", &manual, "100Mi", rwo)
	selected.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "gold"}}
	prebound := newClaim("prebound", &manual, "1Gi", rwo)
	prebound.Spec.VolumeName = "small"
	deleted := newClaim("deleted", &manual, "3Gi", rwo)
	tooBig := newClaim("too-big", &manual, "10Gi", rwo)
	for _, pvc := range []*corev1.PersistentVolumeClaim{prebound, fits, selected, deleted, tooBig} {
		if _, err := c.CoreV1().PersistentVolumeClaims("default").Create(ctx, pvc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]string{"fits": "mid", "selected": "big-gold", "prebound": "small", "deleted": "static-delete"}
	eventually(t, 30*time.Second, func() error {
		for claim, volume := range want {
			pvc, err := c.CoreV1().PersistentVolumeClaims("default").Get(ctx, claim, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if pvc.Spec.VolumeName != volume || pvc.Status.Phase != corev1.ClaimBound {
				return errorf("claim %s: volume %q phase %q; want Bound to %s", claim, pvc.Spec.VolumeName, pvc.Status.Phase, volume)
			}
			pv, err := c.CoreV1().PersistentVolumes().Get(ctx, volume, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if pv.Status.Phase != corev1.VolumeBound || pv.Spec.ClaimRef == nil || pv.Spec.ClaimRef.UID != pvc.UID {
				return errorf("volume %s: phase %q claimRef %+v; want Bound to claim %s", volume, pv.Status.Phase, pv.Spec.ClaimRef, claim)
			}
		}
		return nil
	})
	fitsClaim, _ := c.CoreV1().PersistentVolumeClaims("default").Get(ctx, "fits", metav1.GetOptions{})
	if fitsClaim.Annotations["pv.kubernetes.io/bind-completed"] != "yes" || fitsClaim.Annotations["pv.kubernetes.io/bound-by-controller"] != "yes" {
		t.Errorf("claim annotations = %v", fitsClaim.Annotations)
	}
	if got := fitsClaim.Status.Capacity[corev1.ResourceStorage]; got.String() != "2Gi" {
		t.Errorf("claim capacity = %s, want the volume's 2Gi", got.String())
	}
	preClaim, _ := c.CoreV1().PersistentVolumeClaims("default").Get(ctx, "prebound", metav1.GetOptions{})
	if preClaim.Annotations["pv.kubernetes.io/bound-by-controller"] != "" {
		t.Errorf("a claim the user bound is annotated bound-by-controller: %v", preClaim.Annotations)
	}
	big, _ := c.CoreV1().PersistentVolumeClaims("default").Get(ctx, "too-big", metav1.GetOptions{})
	if big.Status.Phase != corev1.ClaimPending || big.Spec.VolumeName != "" {
		t.Errorf("claim too-big: phase %q volume %q; want Pending, unbound", big.Status.Phase, big.Spec.VolumeName)
	}
	for _, name := range []string{"mid-rox", "other-class"} {
		pv, _ := c.CoreV1().PersistentVolumes().Get(ctx, name, metav1.GetOptions{})
		if pv.Status.Phase != corev1.VolumeAvailable || pv.Spec.ClaimRef != nil {
			t.Errorf("volume %s: phase %q claimRef %+v; want Available", name, pv.Status.Phase, pv.Spec.ClaimRef)
		}
	}

	// Retain: the volume is Released and keeps its claimRef. A static
	// volume with Delete has no deleter: Failed, with upstream's event.
	for _, claim := range []string{"fits", "deleted"} {
		if err := c.CoreV1().PersistentVolumeClaims("default").Delete(ctx, claim, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 30*time.Second, func() error {
		pv, err := c.CoreV1().PersistentVolumes().Get(ctx, "mid", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if pv.Status.Phase != corev1.VolumeReleased || pv.Spec.ClaimRef == nil || pv.Spec.ClaimRef.Name != "fits" {
			return errorf("volume mid: phase %q claimRef %+v; want Released, still naming the claim", pv.Status.Phase, pv.Spec.ClaimRef)
		}
		pv, err = c.CoreV1().PersistentVolumes().Get(ctx, "static-delete", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if pv.Status.Phase != corev1.VolumeFailed || !hasEvent(c, "", "static-delete", "VolumeFailedDelete") {
			return errorf("volume static-delete: phase %q; want Failed with a VolumeFailedDelete event", pv.Status.Phase)
		}
		return nil
	})
	// A new claim does not get the released volume.
	again := newClaim("again", &manual, "1500Mi", rwo)
	if _, err := c.CoreV1().PersistentVolumeClaims("default").Create(ctx, again, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	if got, _ := c.CoreV1().PersistentVolumeClaims("default").Get(ctx, "again", metav1.GetOptions{}); got.Spec.VolumeName != "" {
		t.Errorf("claim again bound %q; a Released volume must not be bound again", got.Spec.VolumeName)
	}
}

// A claim a running pod uses is not deleted under it: deleting it leaves
// it Terminating (the pvc-protection finalizer) until the pod is gone,
// and its volume keeps its own finalizer while bound.
func TestClaimInUseIsProtectedUntilItsPodGoes(t *testing.T) {
	s, c := startAgentServer(t)
	ctx := context.Background()
	waitDefaultClass(t, c)
	pvc, err := c.CoreV1().PersistentVolumeClaims("default").Create(ctx, newClaim("kept", nil, "10Mi", corev1.ReadWriteOnce), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(pvc.Finalizers, "kubernetes.io/pvc-protection") {
		t.Fatalf("new claim's finalizers %v, want kubernetes.io/pvc-protection", pvc.Finalizers)
	}
	if _, err := c.CoreV1().Pods("default").Create(ctx, claimPod("user", "kept", "echo data > /data/f; sleep 300", false), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPod(t, c, "default", "user", 90*time.Second, "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	pvc, _ = c.CoreV1().PersistentVolumeClaims("default").Get(ctx, "kept", metav1.GetOptions{})
	pv, err := c.CoreV1().PersistentVolumes().Get(ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(pv.Finalizers, "kubernetes.io/pv-protection") {
		t.Errorf("volume finalizers %v, want kubernetes.io/pv-protection", pv.Finalizers)
	}
	dir := filepath.Join(s.dataDir, "storage", pv.Name+"_default_kept")

	if err := c.CoreV1().PersistentVolumeClaims("default").Delete(ctx, "kept", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	pvc, err = c.CoreV1().PersistentVolumeClaims("default").Get(ctx, "kept", metav1.GetOptions{})
	if err != nil || pvc.DeletionTimestamp == nil {
		t.Fatalf("a claim in use was not kept Terminating: %v %v", err, pvc)
	}
	if _, err := os.Stat(filepath.Join(dir, "f")); err != nil {
		t.Errorf("the data of a claim in use went: %v", err)
	}

	deletePodAndWait(t, c, "default", "user")
	eventually(t, 60*time.Second, func() error {
		if _, err := c.CoreV1().PersistentVolumeClaims("default").Get(ctx, "kept", metav1.GetOptions{}); err == nil {
			return errorf("the claim is still there after its pod went")
		}
		if _, err := c.CoreV1().PersistentVolumes().Get(ctx, pv.Name, metav1.GetOptions{}); err == nil {
			return errorf("the volume is still there")
		}
		if _, err := os.Stat(dir); err == nil {
			return errorf("the data directory is still there")
		}
		return nil
	})
}

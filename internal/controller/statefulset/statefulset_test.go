package statefulset

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-sh/skiff/internal/controller/history"
)

var t0 = time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)

type fixture struct {
	c       *Controller
	client  *fake.Clientset
	factory informers.SharedInformerFactory
	events  *record.FakeRecorder
}

// newFixture preloads the listers and the fake API with objs; informers
// are not started, so a test sees exactly the writes of its sync.
func newFixture(t *testing.T, objs ...runtime.Object) *fixture {
	t.Helper()
	client := fake.NewClientset(objs...)
	factory := informers.NewSharedInformerFactory(client, 0)
	f := &fixture{client: client, factory: factory, events: record.NewFakeRecorder(1000)}
	f.c = New(client, factory, f.events, nil)
	f.c.now = func() time.Time { return t0 }
	for _, o := range objs {
		switch o := o.(type) {
		case *appsv1.StatefulSet:
			factory.Apps().V1().StatefulSets().Informer().GetIndexer().Add(o)
		case *corev1.Pod:
			factory.Core().V1().Pods().Informer().GetIndexer().Add(o)
		case *corev1.PersistentVolumeClaim:
			factory.Core().V1().PersistentVolumeClaims().Informer().GetIndexer().Add(o)
		case *appsv1.ControllerRevision:
			factory.Apps().V1().ControllerRevisions().Informer().GetIndexer().Add(o)
		}
	}
	t.Cleanup(f.c.queue.ShutDown)
	return f
}

func (f *fixture) sync(t *testing.T) {
	t.Helper()
	if err := f.c.sync(context.Background(), "default/web"); err != nil {
		t.Fatal(err)
	}
}

// writes are "verb resource name" of each write, in order.
func (f *fixture) writes() []string {
	var out []string
	for _, a := range f.client.Actions() {
		var name string
		switch a := a.(type) {
		case k8stesting.CreateAction:
			name = a.GetObject().(metav1.Object).GetName()
		case k8stesting.DeleteAction:
			name = a.GetName()
		case k8stesting.UpdateAction:
			name = a.GetObject().(metav1.Object).GetName()
		default:
			continue
		}
		r := a.GetResource().Resource
		if a.GetSubresource() != "" {
			r += "/" + a.GetSubresource()
		}
		out = append(out, a.GetVerb()+" "+r+" "+name)
	}
	return out
}

func (f *fixture) createdPod(t *testing.T, name string) *corev1.Pod {
	t.Helper()
	for _, a := range f.client.Actions() {
		if c, ok := a.(k8stesting.CreateAction); ok && a.GetResource().Resource == "pods" {
			if p := c.GetObject().(*corev1.Pod); p.Name == name {
				return p
			}
		}
	}
	t.Fatalf("pod %s not created; writes %v", name, f.writes())
	return nil
}

func webSet(replicas int32) *appsv1.StatefulSet {
	labels := map[string]string{"app": "web"}
	return &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "set-uid", Generation: 1},
		Spec: appsv1.StatefulSetSpec{
			Replicas: &replicas, ServiceName: "nginx", PodManagementPolicy: appsv1.OrderedReadyPodManagement,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "nginx", Image: "nginx:1"}}},
			},
			UpdateStrategy: appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{Partition: new(int32(0))}},
			RevisionHistoryLimit: new(int32(10)),
		},
	}
}

func revisionFor(t *testing.T, set *appsv1.StatefulSet, number int64) *appsv1.ControllerRevision {
	t.Helper()
	r, err := newRevision(set, number, 0)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// runningPod is the set's pod of ordinal from rev, Running and ready as asked.
func runningPod(t *testing.T, set *appsv1.StatefulSet, rev *appsv1.ControllerRevision, ordinal int, ready bool) *corev1.Pod {
	t.Helper()
	tmpl, err := templateOf(rev)
	if err != nil {
		t.Fatal(err)
	}
	p := newPod(set, tmpl, rev.Name, ordinal)
	p.UID = types.UID("uid-" + p.Name)
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	p.Status = corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: status}}}
	return p
}

func TestOrderedReadyCreatesOrdinalZeroWithClaimFirst(t *testing.T) {
	set := webSet(3)
	set.Spec.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "www"},
		Spec: corev1.PersistentVolumeClaimSpec{Resources: corev1.VolumeResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}}}
	f := newFixture(t, set)
	f.sync(t)

	w := f.writes()
	claim, pod := slices.Index(w, "create persistentvolumeclaims www-web-0"), slices.Index(w, "create pods web-0")
	if claim < 0 || pod < 0 || claim > pod || slices.Contains(w, "create pods web-1") {
		t.Fatalf("writes %v: want claim www-web-0, then only pod web-0", w)
	}
	p := f.createdPod(t, "web-0")
	rev := revisionFor(t, set, 1)
	if p.Spec.Hostname != "web-0" || p.Spec.Subdomain != "nginx" ||
		p.Labels[appsv1.StatefulSetPodNameLabel] != "web-0" || p.Labels[appsv1.PodIndexLabel] != "0" ||
		p.Labels[history.HashLabel] != rev.Name {
		t.Errorf("pod identity: hostname %q subdomain %q labels %v (revision %s)", p.Spec.Hostname, p.Spec.Subdomain, p.Labels, rev.Name)
	}
	if len(p.Spec.Volumes) != 1 || p.Spec.Volumes[0].PersistentVolumeClaim.ClaimName != "www-web-0" {
		t.Errorf("volumes %+v", p.Spec.Volumes)
	}
	if ref := metav1.GetControllerOf(p); ref == nil || ref.UID != set.UID {
		t.Errorf("owner %+v", ref)
	}
	want := []string{
		"Normal SuccessfulCreate create Claim www-web-0 Pod web-0 in StatefulSet web success",
		"Normal SuccessfulCreate create Pod web-0 in StatefulSet web successful",
	}
	for _, e := range want {
		if got := <-f.events.Events; got != e {
			t.Errorf("event %q, want %q", got, e)
		}
	}
}

func TestOrderedReadyWaitsForThePreviousPod(t *testing.T) {
	set := webSet(3)
	rev := revisionFor(t, set, 1)
	for _, tc := range []struct {
		ready bool
		want  bool
	}{{false, false}, {true, true}} {
		f := newFixture(t, set, rev, runningPod(t, set, rev, 0, tc.ready))
		f.sync(t)
		if got := slices.Contains(f.writes(), "create pods web-1"); got != tc.want {
			t.Errorf("web-0 ready=%v: created web-1 %v; writes %v", tc.ready, got, f.writes())
		}
	}
}

func TestParallelCreatesAllAtOnce(t *testing.T) {
	set := webSet(3)
	set.Spec.PodManagementPolicy = appsv1.ParallelPodManagement
	f := newFixture(t, set)
	f.sync(t)
	for _, n := range []string{"web-0", "web-1", "web-2"} {
		f.createdPod(t, n)
	}
}

// Parallel creates in slow-start batches: a create that fails for every
// pod is tried once, not once per pod.
func TestParallelCreatesStopAfterTheFirstFailingBatch(t *testing.T) {
	set := webSet(5)
	set.Spec.PodManagementPolicy = appsv1.ParallelPodManagement
	f := newFixture(t, set)
	f.client.PrependReactor("create", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("exceeded quota")
	})
	if err := f.c.sync(context.Background(), "default/web"); err == nil {
		t.Fatal("sync succeeded though no pod could be made")
	}
	tries := 0
	for _, a := range f.client.Actions() {
		if a.GetVerb() == "create" && a.GetResource().Resource == "pods" {
			tries++
		}
	}
	if tries != 1 {
		t.Errorf("%d pod creates tried, want 1 (the first batch)", tries)
	}
}

func TestScaleDownDeletesHighestOrdinalOnly(t *testing.T) {
	set := webSet(1)
	rev := revisionFor(t, set, 1)
	f := newFixture(t, set, rev, runningPod(t, set, rev, 0, true), runningPod(t, set, rev, 1, true), runningPod(t, set, rev, 2, true))
	f.sync(t)
	if deleted := f.deletedPods(); !slices.Equal(deleted, []string{"web-2"}) {
		t.Fatalf("deleted %v, want [web-2]", deleted)
	}
}

// OrderedReady scales down only an available pod (minReadySeconds past
// its readiness), unless it is the first unhealthy one.
func TestOrderedScaleDownWaitsForTheCondemnedPodToBeAvailable(t *testing.T) {
	set := webSet(2)
	set.Spec.MinReadySeconds = 10
	rev := revisionFor(t, set, 1)
	notReady := runningPod(t, set, rev, 2, false)
	justReady := runningPod(t, set, rev, 3, true)
	justReady.Status.Conditions[0].LastTransitionTime = metav1.NewTime(t0.Add(-time.Second))
	longReady := func(ordinal int) *corev1.Pod {
		p := runningPod(t, set, rev, ordinal, true)
		p.Status.Conditions[0].LastTransitionTime = metav1.NewTime(t0.Add(-time.Hour))
		return p
	}
	f := newFixture(t, set, rev, longReady(0), longReady(1), notReady, justReady)
	f.sync(t)
	if deleted := f.deletedPods(); len(deleted) != 0 {
		t.Fatalf("deleted %v while web-3 is not yet available and web-2 is the first unhealthy; writes %v", deleted, f.writes())
	}
}

func TestFailedPodIsDeletedToBeRecreated(t *testing.T) {
	set := webSet(1)
	rev := revisionFor(t, set, 1)
	p := runningPod(t, set, rev, 0, false)
	p.Status.Phase = corev1.PodFailed
	f := newFixture(t, set, rev, p)
	f.sync(t)
	if !slices.Contains(f.writes(), "delete pods web-0") {
		t.Fatalf("writes %v, want web-0 deleted", f.writes())
	}
}

func TestRollingUpdateStopsAtThePartition(t *testing.T) {
	old := webSet(3)
	oldRev := revisionFor(t, old, 1)
	set := old.DeepCopy()
	set.Spec.Template.Spec.Containers[0].Image = "nginx:2"
	set.Spec.UpdateStrategy.RollingUpdate.Partition = new(int32(1))
	set.Status.CurrentRevision = oldRev.Name
	newRev := revisionFor(t, set, 2)

	for _, tc := range []struct {
		name    string
		updated []int // ordinals already at the new revision
		want    []string
	}{
		{"highest first", nil, []string{"web-2"}},
		{"then the next", []int{2}, []string{"web-1"}},
		{"not below the partition", []int{1, 2}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs := []runtime.Object{set, oldRev, newRev}
			for o := range 3 {
				r := oldRev
				if slices.Contains(tc.updated, o) {
					r = newRev
				}
				objs = append(objs, runningPod(t, set, r, o, true))
			}
			f := newFixture(t, objs...)
			f.sync(t)
			if deleted := f.deletedPods(); !slices.Equal(deleted, tc.want) {
				t.Fatalf("deleted %v, want %v", deleted, tc.want)
			}
		})
	}
}

// deletedPods are the pods a sync deleted, in order.
func (f *fixture) deletedPods() []string {
	var deleted []string
	for _, w := range f.writes() {
		if name, ok := strings.CutPrefix(w, "delete pods "); ok {
			deleted = append(deleted, name)
		}
	}
	return deleted
}

// With ordinals.start, the partition still counts pods from the first:
// ordinals 5, 6, 7 and partition 1 keep web-5 at the old revision, also
// when it is made again.
func TestPartitionCountsFromTheStartOrdinal(t *testing.T) {
	old := webSet(3)
	old.Spec.Ordinals = &appsv1.StatefulSetOrdinals{Start: 5}
	oldRev := revisionFor(t, old, 1)
	set := old.DeepCopy()
	set.Spec.Template.Spec.Containers[0].Image = "nginx:2"
	set.Spec.UpdateStrategy.RollingUpdate.Partition = new(int32(1))
	set.Status.CurrentRevision = oldRev.Name
	newRev := revisionFor(t, set, 2)

	f := newFixture(t, set, oldRev, newRev, runningPod(t, set, oldRev, 5, true), runningPod(t, set, oldRev, 6, true), runningPod(t, set, newRev, 7, true))
	f.sync(t)
	if got := f.deletedPods(); !slices.Equal(got, []string{"web-6"}) {
		t.Errorf("deleted %v, want web-6 (web-7 is updated, web-5 below the partition)", got)
	}

	f = newFixture(t, set, oldRev, newRev, runningPod(t, set, newRev, 6, true), runningPod(t, set, newRev, 7, true))
	f.sync(t)
	if got := f.deletedPods(); len(got) != 0 {
		t.Errorf("deleted %v below the partition", got)
	}
	p, err := f.client.CoreV1().Pods("default").Get(context.Background(), "web-5", metav1.GetOptions{})
	if err != nil || p.Labels[appsv1.ControllerRevisionHashLabelKey] != oldRev.Name {
		t.Errorf("web-5 made again: %v, %v; want it from the current revision %s", p, err, oldRev.Name)
	}
}

// A percentage maxUnavailable rounds down, to at least one: 30% of 4 is 1.
func TestMaxUnavailablePercentageRoundsDown(t *testing.T) {
	old := webSet(4)
	old.Spec.PodManagementPolicy = appsv1.ParallelPodManagement
	oldRev := revisionFor(t, old, 1)
	set := old.DeepCopy()
	set.Spec.Template.Spec.Containers[0].Image = "nginx:2"
	set.Spec.UpdateStrategy.RollingUpdate.MaxUnavailable = new(intstr.FromString("30%"))
	set.Status.CurrentRevision = oldRev.Name
	newRev := revisionFor(t, set, 2)
	objs := []runtime.Object{set, oldRev, newRev}
	for o := range 4 {
		objs = append(objs, runningPod(t, set, oldRev, o, true))
	}
	f := newFixture(t, objs...)
	f.sync(t)
	if got := f.deletedPods(); !slices.Equal(got, []string{"web-3"}) {
		t.Errorf("deleted %v, want only web-3", got)
	}
}

// A claim another controller owns keeps that owner and gets none of ours.
func TestRetentionLeavesAnotherControllersClaimAlone(t *testing.T) {
	set := webSet(2)
	set.Spec.PersistentVolumeClaimRetentionPolicy = &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
		WhenDeleted: appsv1.DeletePersistentVolumeClaimRetentionPolicyType}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: podName(set, 0), UID: "pod-uid"}}
	theirs := metav1.OwnerReference{APIVersion: "example.com/v1", Kind: "Database", Name: "db", UID: "db-uid", Controller: new(true)}
	claim := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{OwnerReferences: []metav1.OwnerReference{theirs}}}
	if setRetentionOwners(set, pod, claim) || len(claim.OwnerReferences) != 1 || claim.OwnerReferences[0].UID != "db-uid" {
		t.Errorf("owners %+v, want only the Database", claim.OwnerReferences)
	}
}

func TestRevisionIsNamedByDataHashAndCurrentOnceAllUpdated(t *testing.T) {
	set := webSet(1)
	f := newFixture(t, set)
	f.sync(t)
	data, _ := history.TemplatePatch(&set.Spec.Template)
	var zero int32
	name := "web-" + history.DataHash(data, &zero)
	if !slices.Contains(f.writes(), "create controllerrevisions "+name) {
		t.Fatalf("writes %v, want revision %s", f.writes(), name)
	}

	rev := revisionFor(t, set, 1)
	set.Status.CurrentRevision = "web-old"
	f = newFixture(t, set, rev, runningPod(t, set, rev, 0, true))
	f.sync(t)
	status := f.writtenStatus()
	if status == nil || status.CurrentRevision != rev.Name || status.UpdateRevision != rev.Name ||
		status.Replicas != 1 || status.ReadyReplicas != 1 || status.UpdatedReplicas != 1 || status.CurrentReplicas != 1 ||
		status.AvailableReplicas != 1 || status.ObservedGeneration != 1 {
		t.Fatalf("status %+v", status)
	}
}

func TestRetentionPolicyOwnerReferences(t *testing.T) {
	const retain, del = appsv1.RetainPersistentVolumeClaimRetentionPolicyType, appsv1.DeletePersistentVolumeClaimRetentionPolicyType
	for _, tc := range []struct {
		whenDeleted, whenScaled appsv1.PersistentVolumeClaimRetentionPolicyType
		ordinal                 int // of 2 replicas: 2 is scaled away
		want                    []string
	}{
		{retain, retain, 0, nil},
		{retain, retain, 2, nil},
		{del, retain, 0, []string{"StatefulSet"}},
		{del, retain, 2, []string{"StatefulSet"}},
		{retain, del, 0, nil},
		{retain, del, 2, []string{"Pod"}},
		{del, del, 0, []string{"StatefulSet"}},
		{del, del, 2, []string{"Pod"}},
	} {
		set := webSet(2)
		set.Spec.PersistentVolumeClaimRetentionPolicy = &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
			WhenDeleted: tc.whenDeleted, WhenScaled: tc.whenScaled}
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: podName(set, tc.ordinal), UID: "pod-uid"}}
		// Start from the opposite owners, to see both added and removed.
		claim := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{OwnerReferences: []metav1.OwnerReference{
			{Kind: "Pod", Name: pod.Name, UID: pod.UID}, {Kind: "StatefulSet", Name: set.Name, UID: set.UID}}}}
		setRetentionOwners(set, pod, claim)
		var got []string
		for _, r := range claim.OwnerReferences {
			got = append(got, r.Kind)
			if r.Controller == nil || !*r.Controller || r.BlockOwnerDeletion == nil || !*r.BlockOwnerDeletion {
				t.Errorf("whenDeleted=%s whenScaled=%s ordinal %d: %s ref %+v is not a controller ref", tc.whenDeleted, tc.whenScaled, tc.ordinal, r.Kind, r)
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("whenDeleted=%s whenScaled=%s ordinal %d: owners %v, want %v", tc.whenDeleted, tc.whenScaled, tc.ordinal, got, tc.want)
		}
	}
}

// writtenStatus is the last status the sync wrote, nil if none.
func (f *fixture) writtenStatus() *appsv1.StatefulSetStatus {
	var status *appsv1.StatefulSetStatus
	for _, a := range f.client.Actions() {
		if a.GetSubresource() == "status" {
			status = &a.(k8stesting.UpdateAction).GetObject().(*appsv1.StatefulSet).Status
		}
	}
	return status
}

func TestOnDeleteUpdateCompletesOnceEveryPodIsReplaced(t *testing.T) {
	old := webSet(2)
	old.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType}
	oldRev := revisionFor(t, old, 1)
	set := old.DeepCopy()
	set.Spec.Template.Spec.Containers[0].Image = "nginx:2"
	set.Status.CurrentRevision = oldRev.Name
	newRev := revisionFor(t, set, 2)

	for _, tc := range []struct {
		name     string
		replaced int // pods at the new revision, from web-0 up
		want     string
	}{
		{"one pod left", 1, oldRev.Name},
		{"all replaced", 2, newRev.Name},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs := []runtime.Object{set, oldRev, newRev}
			for o := range 2 {
				r := oldRev
				if o < tc.replaced {
					r = newRev
				}
				objs = append(objs, runningPod(t, set, r, o, true))
			}
			f := newFixture(t, objs...)
			f.sync(t)
			if slices.Contains(f.writes(), "delete pods web-1") {
				t.Fatalf("OnDelete deleted a pod: %v", f.writes())
			}
			status := f.writtenStatus()
			if status == nil || status.CurrentRevision != tc.want || status.UpdateRevision != newRev.Name {
				t.Fatalf("status %+v, want current revision %s", status, tc.want)
			}
		})
	}
}

func TestRollingUpdateIsNotCompleteWhileAPodIsMissing(t *testing.T) {
	old := webSet(3)
	oldRev := revisionFor(t, old, 1)
	set := old.DeepCopy()
	set.Spec.Template.Spec.Containers[0].Image = "nginx:2"
	set.Spec.UpdateStrategy.RollingUpdate.Partition = new(int32(1))
	set.Status.CurrentRevision = oldRev.Name
	newRev := revisionFor(t, set, 2)
	// web-0, below the partition, is gone and cannot be made again yet;
	// web-1 and web-2 are updated and ready.
	f := newFixture(t, set, oldRev, newRev, runningPod(t, set, newRev, 1, true), runningPod(t, set, newRev, 2, true))
	f.client.PrependReactor("create", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("exceeded quota")
	})
	if err := f.c.sync(context.Background(), "default/web"); err == nil {
		t.Fatal("sync succeeded though web-0 could not be made")
	}
	// Were the update complete, web-0 would come back from the new
	// template despite the partition.
	if status := f.writtenStatus(); status == nil || status.CurrentRevision != oldRev.Name {
		t.Fatalf("status %+v, want current revision still %s", status, oldRev.Name)
	}
}

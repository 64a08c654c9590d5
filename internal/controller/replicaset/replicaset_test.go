package replicaset

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	appslisters "k8s.io/client-go/listers/apps/v1"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
)

var t0 = time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)

type fixture struct {
	c      *Controller
	client *fake.Clientset
	events *record.FakeRecorder
	now    time.Time
}

// newFixture preloads the listers and the fake API with objs; the
// informers are not started, so that a test sees exactly the writes of
// the syncs it runs.
func newFixture(t *testing.T, objs ...runtime.Object) *fixture {
	t.Helper()
	client := fake.NewClientset(objs...)
	var n atomic.Int32
	client.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		pod := a.(k8stesting.CreateAction).GetObject().(*corev1.Pod)
		if pod.Name == "" {
			pod.Name = fmt.Sprintf("%sx%04d", pod.GenerateName, n.Add(1))
		}
		return false, nil, nil
	})
	factory := informers.NewSharedInformerFactory(client, 0)
	f := &fixture{client: client, events: record.NewFakeRecorder(1000), now: t0}
	f.c = New(client, factory, f.events, nil)
	f.c.now = func() time.Time { return f.now }
	f.c.expectations.now = f.c.now
	for _, o := range objs {
		switch o := o.(type) {
		case *appsv1.ReplicaSet:
			factory.Apps().V1().ReplicaSets().Informer().GetIndexer().Add(o)
		case *corev1.Pod:
			factory.Core().V1().Pods().Informer().GetIndexer().Add(o)
		}
	}
	t.Cleanup(f.c.queue.ShutDown)
	return f
}

func (f *fixture) sync(t *testing.T, key string) error {
	t.Helper()
	f.client.ClearActions()
	return f.c.sync(context.Background(), key)
}

// writes are the actions that change something, as "verb resource[/sub] name".
func (f *fixture) writes() []string {
	var out []string
	for _, a := range f.client.Actions() {
		switch a.GetVerb() {
		case "create", "update":
			name, _ := metav1ObjectName(a.(interface{ GetObject() runtime.Object }).GetObject())
			out = append(out, join(a.GetVerb(), a, name))
		case "patch":
			out = append(out, join("patch", a, a.(k8stesting.PatchAction).GetName()))
		case "delete":
			out = append(out, join("delete", a, a.(k8stesting.DeleteAction).GetName()))
		}
	}
	return out
}

func join(verb string, a k8stesting.Action, name string) string {
	r := a.GetResource().Resource
	if a.GetSubresource() != "" {
		r += "/" + a.GetSubresource()
	}
	return verb + " " + r + " " + name
}

func metav1ObjectName(o runtime.Object) (string, bool) {
	m, ok := o.(metav1.Object)
	if !ok {
		return "", false
	}
	if m.GetName() == "" {
		return m.GetGenerateName() + "*", true
	}
	return m.GetName(), true
}

func (f *fixture) drainEvents() []string {
	var out []string
	for {
		select {
		case e := <-f.events.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func newRS(name string, replicas int32) *appsv1.ReplicaSet {
	return &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID(name + "-uid"), Generation: 2},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name, "tier": "web"}, Annotations: map[string]string{"a": "b"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
			},
		},
	}
}

type podOpt func(*corev1.Pod)

func newPod(name string, owner *appsv1.ReplicaSet, opts ...podOpt) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID(name + "-uid"),
			Labels: map[string]string{"app": "web", "tier": "web"}, CreationTimestamp: metav1.NewTime(t0.Add(-time.Hour))},
		Spec:   corev1.PodSpec{NodeName: "n1"},
		Status: corev1.PodStatus{Phase: corev1.PodRunning},
	}
	if owner != nil {
		p.Labels["app"] = owner.Name
		p.OwnerReferences = []metav1.OwnerReference{*controllerRef(owner)}
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func ready(since time.Time) podOpt {
	return func(p *corev1.Pod) {
		p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(since)})
	}
}

func phase(ph corev1.PodPhase) podOpt { return func(p *corev1.Pod) { p.Status.Phase = ph } }

func unscheduled(p *corev1.Pod) { p.Spec.NodeName = "" }

func created(at time.Time) podOpt {
	return func(p *corev1.Pod) { p.CreationTimestamp = metav1.NewTime(at) }
}

func restarted(n int32) podOpt {
	return func(p *corev1.Pod) {
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "c", RestartCount: n}}
	}
}

func labeled(k, v string) podOpt { return func(p *corev1.Pod) { p.Labels[k] = v } }

func deleting(p *corev1.Pod) {
	ts := metav1.NewTime(t0)
	p.DeletionTimestamp = &ts
}

// staleLister lists rss whatever the API holds.
func staleLister(rss ...*appsv1.ReplicaSet) appslisters.ReplicaSetLister {
	idx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	for _, rs := range rss {
		idx.Add(rs)
	}
	return appslisters.NewReplicaSetLister(idx)
}

func (f *fixture) rs(t *testing.T, name string) *appsv1.ReplicaSet {
	t.Helper()
	rs, err := f.client.AppsV1().ReplicaSets("default").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func TestSyncCreatesMissingPodsOwnedByTheReplicaSetAndWaitsForThem(t *testing.T) {
	rs := newRS("web", 3)
	f := newFixture(t, rs)
	if err := f.sync(t, "default/web"); err != nil {
		t.Fatal(err)
	}
	want := []string{"create pods web-*", "create pods web-*", "create pods web-*", "update replicasets/status web"}
	if got := f.writes(); !slices.Equal(got, want) {
		t.Fatalf("writes = %v, want %v", got, want)
	}
	for _, a := range f.client.Actions()[:3] {
		pod := a.(k8stesting.CreateAction).GetObject().(*corev1.Pod)
		ref := metav1.GetControllerOf(pod)
		if ref == nil || ref.APIVersion != "apps/v1" || ref.Kind != "ReplicaSet" || ref.Name != "web" || ref.UID != rs.UID ||
			ref.BlockOwnerDeletion == nil || !*ref.BlockOwnerDeletion {
			t.Errorf("ownerReferences = %+v", pod.OwnerReferences)
		}
		if pod.GenerateName != "web-" || pod.Labels["tier"] != "web" || pod.Annotations["a"] != "b" || pod.Spec.Containers[0].Image != "busybox" {
			t.Errorf("pod not made from the template: %+v", pod.ObjectMeta)
		}
	}
	events := f.drainEvents()
	if len(events) != 3 || !strings.HasPrefix(events[0], "Normal SuccessfulCreate Created pod: web-") {
		t.Errorf("events = %q", events)
	}
	st := f.rs(t, "web").Status
	if st.Replicas != 0 || st.ObservedGeneration != 2 {
		t.Errorf("status = %+v", st)
	}

	// The informer has not shown the pods yet: a second sync must not
	// make three more.
	f.c.rsLister = staleLister(f.rs(t, "web"))
	if err := f.sync(t, "default/web"); err != nil {
		t.Fatal(err)
	}
	if got := f.writes(); len(got) != 0 {
		t.Errorf("second sync before the pods were observed wrote %v", got)
	}
	for range 3 {
		f.c.expectations.creationObserved("default/web")
	}
	if !f.c.expectations.satisfied("default/web") {
		t.Error("expectations not satisfied after the three creations were observed")
	}
}

func TestExpectationsExpireAfterFiveMinutes(t *testing.T) {
	f := newFixture(t)
	f.c.expectations.expectCreations("default/web", 2)
	f.now = t0.Add(ExpectationsTimeout)
	if f.c.expectations.satisfied("default/web") {
		t.Error("satisfied at the timeout")
	}
	f.now = t0.Add(ExpectationsTimeout + time.Second)
	if !f.c.expectations.satisfied("default/web") {
		t.Error("not satisfied past the timeout")
	}
}

func TestDeletionIsObservedOnceWhetherSeenGoingOrGone(t *testing.T) {
	e := newExpectations(time.Now)
	e.expectDeletions("default/web", []string{"default/a", "default/b"})
	e.deletionObserved("default/web", "default/a")
	e.deletionObserved("default/web", "default/a") // the final delete after the deletionTimestamp update
	e.deletionObserved("default/web", "default/other")
	if e.satisfied("default/web") {
		t.Fatal("satisfied with b still expected")
	}
	e.deletionObserved("default/web", "default/b")
	if !e.satisfied("default/web") {
		t.Fatal("not satisfied after a and b")
	}
}

func TestCreateFailuresStopTheSlowStartAndSetReplicaFailure(t *testing.T) {
	rs := newRS("web", 10)
	f := newFixture(t, rs)
	var calls atomic.Int32
	f.client.PrependReactor("create", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		if calls.Add(1) > 3 {
			return true, nil, errors.New("quota exceeded")
		}
		return false, nil, nil
	})
	err := f.sync(t, "default/web")
	if err == nil || !strings.Contains(err.Error(), "quota exceeded") {
		t.Fatalf("sync error = %v", err)
	}
	// Batches of 1 and 2 succeed, the batch of 4 fails, no batch of 8.
	if n := calls.Load(); n != 7 {
		t.Errorf("create calls = %d, want 7", n)
	}
	// Three creations are still expected; the seven that failed or were
	// never tried are not.
	if x := f.c.expectations.byKey["default/web"]; x.add != 3 {
		t.Errorf("expected adds = %d, want 3", x.add)
	}
	var failed int
	for _, e := range f.drainEvents() {
		if strings.HasPrefix(e, "Warning FailedCreate Error creating: quota exceeded") {
			failed++
		}
	}
	if failed != 4 {
		t.Errorf("FailedCreate events = %d, want 4", failed)
	}
	cond := condition(f.rs(t, "web").Status, appsv1.ReplicaSetReplicaFailure)
	if cond == nil || cond.Status != corev1.ConditionTrue || cond.Reason != "FailedCreate" || !strings.Contains(cond.Message, "quota exceeded") {
		t.Errorf("ReplicaFailure = %+v", cond)
	}
}

func TestScaleDownDeletesThePodsKubeWouldAndWaitsForThem(t *testing.T) {
	rs := newRS("web", 2)
	old := newPod("old", rs, ready(t0.Add(-time.Hour)), created(t0.Add(-2*time.Hour)))
	young := newPod("young", rs, ready(t0.Add(-time.Minute)), created(t0.Add(-3*time.Minute)))
	pending := newPod("pending", rs, phase(corev1.PodPending), unscheduled)
	notReady := newPod("notready", rs)
	f := newFixture(t, rs, old, young, pending, notReady)
	if err := f.sync(t, "default/web"); err != nil {
		t.Fatal(err)
	}
	got := f.writes()
	slices.Sort(got[:2])
	want := []string{"delete pods notready", "delete pods pending", "update replicasets/status web"}
	if !slices.Equal(got, want) {
		t.Fatalf("writes = %v, want %v", got, want)
	}
	events := f.drainEvents()
	slices.Sort(events)
	if !slices.Equal(events, []string{"Normal SuccessfulDelete Deleted pod: notready", "Normal SuccessfulDelete Deleted pod: pending"}) {
		t.Errorf("events = %q", events)
	}
	if f.c.expectations.satisfied("default/web") {
		t.Error("satisfied before the deletions were observed")
	}
}

func TestDeletionOrderFollowsKubesActivePodsRanking(t *testing.T) {
	now := t0
	for _, tc := range []struct {
		name  string
		first *corev1.Pod
		then  *corev1.Pod
	}{
		{"unscheduled before scheduled", newPod("a", nil, unscheduled), newPod("b", nil)},
		{"pending before unknown", newPod("a", nil, phase(corev1.PodPending)), newPod("b", nil, phase(corev1.PodUnknown))},
		{"unknown before running", newPod("a", nil, phase(corev1.PodUnknown)), newPod("b", nil)},
		{"not ready before ready", newPod("a", nil), newPod("b", nil, ready(now.Add(-time.Hour)))},
		{"lower deletion cost first", newPod("a", nil, func(p *corev1.Pod) { p.Annotations = map[string]string{PodDeletionCostAnnotation: "-5"} }), newPod("b", nil)},
		{"ready for less time first", newPod("a", nil, ready(now.Add(-time.Minute))), newPod("b", nil, ready(now.Add(-time.Hour)))},
		{"more restarts first", newPod("a", nil, restarted(3)), newPod("b", nil, restarted(1))},
		{"newer before older", newPod("a", nil, created(now.Add(-time.Minute))), newPod("b", nil, created(now.Add(-time.Hour)))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, order := range [][]*corev1.Pod{{tc.first, tc.then}, {tc.then, tc.first}} {
				got := podsToDelete(order, nil, 1, now)
				if got[0].Name != tc.first.Name {
					t.Errorf("deleted %s first, want %s", got[0].Name, tc.first.Name)
				}
			}
		})
	}
}

func TestDoubledUpPodsGoFirst(t *testing.T) {
	a, b := newPod("a", nil), newPod("b", nil, func(p *corev1.Pod) { p.Spec.NodeName = "n2" })
	related := []*corev1.Pod{a, b, newPod("c", nil, func(p *corev1.Pod) { p.Spec.NodeName = "n2" })}
	if got := podsToDelete([]*corev1.Pod{a, b}, related, 1, t0); got[0].Name != "b" {
		t.Errorf("deleted %s, want b (shares n2 with c)", got[0].Name)
	}
}

func TestSyncAdoptsMatchingOrphansAndReleasesPodsThatStoppedMatching(t *testing.T) {
	rs := newRS("web", 2)
	orphan := newPod("orphan", nil, labeled("app", "web"))
	moved := newPod("moved", rs, labeled("app", "other"))
	otherOwner := newPod("theirs", nil, labeled("app", "web"), func(p *corev1.Pod) {
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "x", UID: "x-uid", Controller: new(true)}}
	})
	f := newFixture(t, rs, orphan, moved, otherOwner)
	if err := f.sync(t, "default/web"); err != nil {
		t.Fatal(err)
	}
	got := f.writes()
	// The two patches come in the order the lister lists the pods.
	if len(got) == 4 {
		slices.Sort(got[:2])
	}
	want := []string{"patch pods moved", "patch pods orphan", "create pods web-*", "update replicasets/status web"}
	if !slices.Equal(got, want) {
		t.Fatalf("writes = %v, want %v", got, want)
	}
	adopted, _ := f.client.CoreV1().Pods("default").Get(context.Background(), "orphan", metav1.GetOptions{})
	if !metav1.IsControlledBy(adopted, rs) {
		t.Errorf("orphan not adopted: %+v", adopted.OwnerReferences)
	}
	released, _ := f.client.CoreV1().Pods("default").Get(context.Background(), "moved", metav1.GetOptions{})
	if len(released.OwnerReferences) != 0 {
		t.Errorf("moved pod not released: %+v", released.OwnerReferences)
	}
	if st := f.rs(t, "web").Status; st.Replicas != 1 || st.FullyLabeledReplicas != 1 {
		t.Errorf("status = %+v, want the adopted pod counted", st)
	}
}

func TestReplicaSetBeingDeletedAdoptsNothingAndMakesNoPods(t *testing.T) {
	rs := newRS("web", 3)
	ts := metav1.NewTime(t0)
	rs.DeletionTimestamp = &ts
	f := newFixture(t, rs, newPod("orphan", nil, labeled("app", "web")), newPod("moved", rs, labeled("app", "other")))
	if err := f.sync(t, "default/web"); err != nil {
		t.Fatal(err)
	}
	if got := f.writes(); !slices.Equal(got, []string{"update replicasets/status web"}) {
		t.Errorf("writes = %v, want only the status", got)
	}
}

func TestAdoptionRechecksTheReplicaSetPastTheCache(t *testing.T) {
	rs := newRS("web", 1)
	stored := rs.DeepCopy()
	ts := metav1.NewTime(t0)
	stored.DeletionTimestamp = &ts // the API knows; the lister does not yet
	f := newFixture(t, stored, newPod("orphan", nil, labeled("app", "web")))
	f.c.rsLister = staleLister(rs)
	err := f.sync(t, "default/web")
	if err == nil || !strings.Contains(err.Error(), "has just been deleted") {
		t.Fatalf("sync error = %v, want the adoption refused", err)
	}
	for _, w := range f.writes() {
		if strings.HasPrefix(w, "patch") || strings.HasPrefix(w, "create") {
			t.Errorf("wrote %s", w)
		}
	}
}

func TestFinishedPodsAreKeptAndReplacedAndTerminatingOnesDoNotCount(t *testing.T) {
	rs := newRS("web", 2)
	f := newFixture(t, rs,
		newPod("failed", rs, phase(corev1.PodFailed)),
		newPod("done", rs, phase(corev1.PodSucceeded)),
		newPod("going", rs, ready(t0.Add(-time.Hour)), deleting),
		newPod("running", rs, ready(t0.Add(-time.Hour))))
	if err := f.sync(t, "default/web"); err != nil {
		t.Fatal(err)
	}
	// The failed and the succeeded pod stay (the pod garbage collector's),
	// and one more is made beside the running one.
	want := []string{"create pods web-*", "update replicasets/status web"}
	if got := f.writes(); !slices.Equal(got, want) {
		t.Fatalf("writes = %v, want %v", got, want)
	}
	st := f.rs(t, "web").Status
	if st.Replicas != 1 || st.ReadyReplicas != 1 || st.TerminatingReplicas == nil || *st.TerminatingReplicas != 1 {
		t.Errorf("status = %+v", st)
	}
}

func TestStatusCountsAvailableAfterMinReadySecondsAndIsWrittenOnlyWhenChanged(t *testing.T) {
	rs := newRS("web", 2)
	rs.Spec.MinReadySeconds = 10
	f := newFixture(t, rs,
		newPod("long", rs, ready(t0.Add(-20*time.Second))),
		newPod("just", rs, ready(t0.Add(-5*time.Second)), labeled("tier", "db")))
	if err := f.sync(t, "default/web"); err != nil {
		t.Fatal(err)
	}
	st := f.rs(t, "web").Status
	want := appsv1.ReplicaSetStatus{Replicas: 2, FullyLabeledReplicas: 1, ReadyReplicas: 2, AvailableReplicas: 1, ObservedGeneration: 2, TerminatingReplicas: new(int32(0))}
	if st.Replicas != want.Replicas || st.FullyLabeledReplicas != want.FullyLabeledReplicas || st.ReadyReplicas != want.ReadyReplicas ||
		st.AvailableReplicas != want.AvailableReplicas || st.ObservedGeneration != want.ObservedGeneration || *st.TerminatingReplicas != 0 {
		t.Errorf("status = %+v, want %+v", st, want)
	}

	// The same world again, with the status written: nothing to write.
	f.c.rsLister = staleLister(f.rs(t, "web"))
	if err := f.sync(t, "default/web"); err != nil {
		t.Fatal(err)
	}
	if got := f.writes(); len(got) != 0 {
		t.Errorf("unchanged status written again: %v", got)
	}
}

func TestPodEventsQueueTheOwnerOrTheMatchingReplicaSets(t *testing.T) {
	rs, other := newRS("web", 1), newRS("api", 1)
	f := newFixture(t, rs, other)
	events := f.c.podEvents().Handler()
	f.c.expectations.expectCreations("default/web", 1)
	events.OnAdd(newPod("p", rs), false)
	if !f.c.expectations.satisfied("default/web") {
		t.Error("creation not observed")
	}
	key, _ := f.c.queue.Get()
	f.c.queue.Done(key)
	if key != "default/web" {
		t.Errorf("queued %q, want default/web", key)
	}

	events.OnAdd(newPod("orphan", nil, labeled("app", "api")), false)
	key, _ = f.c.queue.Get()
	f.c.queue.Done(key)
	if key != "default/api" {
		t.Errorf("orphan queued %q, want default/api", key)
	}

	// A graceful delete counts as the deletion when it starts.
	p := newPod("p", rs)
	p.ResourceVersion = "1"
	f.c.expectations.expectDeletions("default/web", []string{"default/p"})
	going := p.DeepCopy()
	going.ResourceVersion = "2"
	deleting(going)
	events.OnUpdate(p, going)
	if !f.c.expectations.satisfied("default/web") {
		t.Error("deletion not observed on the deletionTimestamp update")
	}
}

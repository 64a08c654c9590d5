package deployment

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
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

var testNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// fixture is a controller whose caches hold the given objects and whose
// API is a fake that records the writes a sync makes.
type fixture struct {
	t      *testing.T
	client *fake.Clientset
	c      *Controller
	events *record.FakeRecorder
}

func newFixture(t *testing.T, objs ...runtime.Object) *fixture {
	t.Helper()
	client := fake.NewClientset(objs...)
	factory := informers.NewSharedInformerFactory(client, 0)
	events := record.NewFakeRecorder(100)
	c := New(client, factory, events, nil)
	c.now = func() time.Time { return testNow }
	for _, o := range objs {
		var err error
		switch o := o.(type) {
		case *appsv1.Deployment:
			err = factory.Apps().V1().Deployments().Informer().GetIndexer().Add(o)
		case *appsv1.ReplicaSet:
			err = factory.Apps().V1().ReplicaSets().Informer().GetIndexer().Add(o)
		case *corev1.Pod:
			err = factory.Core().V1().Pods().Informer().GetIndexer().Add(o)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	client.ClearActions()
	return &fixture{t: t, client: client, c: c, events: events}
}

func (f *fixture) sync(d *appsv1.Deployment) {
	f.t.Helper()
	if err := f.c.syncKey(context.Background(), key(d)); err != nil {
		f.t.Fatalf("sync: %v", err)
	}
}

// writes lists the writes as "verb resource[/subresource] name".
func (f *fixture) writes() []string {
	var out []string
	for _, a := range f.client.Actions() {
		if a.GetVerb() == "get" || a.GetVerb() == "list" || a.GetVerb() == "watch" {
			continue
		}
		res := a.GetResource().Resource
		if a.GetSubresource() != "" {
			res += "/" + a.GetSubresource()
		}
		name := ""
		switch a := a.(type) {
		case k8stesting.CreateAction:
			name = objectName(a.GetObject())
		case k8stesting.UpdateAction:
			name = objectName(a.GetObject())
		case k8stesting.PatchAction:
			name = a.GetName()
		case k8stesting.DeleteAction:
			name = a.GetName()
		}
		out = append(out, a.GetVerb()+" "+res+" "+name)
	}
	return out
}

func objectName(o runtime.Object) string {
	if m, ok := o.(metav1.Object); ok {
		return m.GetName()
	}
	return ""
}

func (f *fixture) wantWrites(want ...string) {
	f.t.Helper()
	if got := f.writes(); !slices.Equal(got, want) {
		f.t.Errorf("writes:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

func (f *fixture) wantEvents(want ...string) {
	f.t.Helper()
	var got []string
	for len(f.events.Events) > 0 {
		got = append(got, <-f.events.Events)
	}
	if !slices.Equal(got, want) {
		f.t.Errorf("events:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

func (f *fixture) rs(name string) *appsv1.ReplicaSet {
	f.t.Helper()
	rs, err := f.client.AppsV1().ReplicaSets("default").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	return rs
}

func (f *fixture) deployment(name string) *appsv1.Deployment {
	f.t.Helper()
	d, err := f.client.AppsV1().Deployments("default").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	return d
}

// newDeployment is a defaulted Deployment "web" running template(env).
func newDeployment(replicas int32, surge, unavailable intstr.IntOrString, env string) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "web-uid", Generation: 1},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: template(env),
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &surge, MaxUnavailable: &unavailable}},
			RevisionHistoryLimit:    new(int32(10)),
			ProgressDeadlineSeconds: new(int32(600)),
		},
	}
}

// replicaSetFor is the ReplicaSet the controller makes for template(env)
// at the given revision, size and availability, created age ago.
func replicaSetFor(d *appsv1.Deployment, env string, revision, replicas, available int32, age time.Duration) *appsv1.ReplicaSet {
	tmpl := template(env)
	hash := history.TemplateHash(&tmpl, nil)
	tmpl.Labels = withLabel(tmpl.Labels, appsv1.DefaultDeploymentUniqueLabelKey, hash)
	return &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web-" + hash, Namespace: "default", UID: types.UID("rs-" + env), Labels: tmpl.Labels,
			CreationTimestamp: metav1.NewTime(testNow.Add(-age)), Generation: 1,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(d, controllerKind)},
			Annotations: map[string]string{RevisionAnnotation: fmt.Sprint(revision),
				DesiredReplicasAnnotation: fmt.Sprint(*d.Spec.Replicas), MaxReplicasAnnotation: fmt.Sprint(*d.Spec.Replicas + maxSurge(d))}},
		Spec: appsv1.ReplicaSetSpec{Replicas: &replicas, Template: tmpl,
			Selector: selectorWithLabel(d.Spec.Selector, appsv1.DefaultDeploymentUniqueLabelKey, hash)},
		Status: appsv1.ReplicaSetStatus{Replicas: replicas, ReadyReplicas: available, AvailableReplicas: available, ObservedGeneration: 1},
	}
}

func TestNewDeploymentGetsAHashNamedReplicaSetAtRevisionOne(t *testing.T) {
	d := newDeployment(3, intstr.FromString("25%"), intstr.FromString("25%"), "1")
	f := newFixture(t, d)
	f.sync(d)
	tmpl := template("1")
	hash := history.TemplateHash(&tmpl, nil)
	name := "web-" + hash
	f.wantWrites("create replicasets "+name, "patch deployments web", "update deployments/status web", "update deployments/status web")
	f.wantEvents("Normal ScalingReplicaSet Scaled up replica set " + name + " from 0 to 3")

	rs := f.rs(name)
	for what, labels := range map[string]map[string]string{"labels": rs.Labels, "template labels": rs.Spec.Template.Labels, "selector": rs.Spec.Selector.MatchLabels} {
		if labels[appsv1.DefaultDeploymentUniqueLabelKey] != hash || labels["app"] != "web" {
			t.Errorf("%s: %v", what, labels)
		}
	}
	if !metav1.IsControlledBy(rs, d) || !*rs.OwnerReferences[0].BlockOwnerDeletion {
		t.Errorf("ownerReferences %+v", rs.OwnerReferences)
	}
	if *rs.Spec.Replicas != 3 {
		t.Errorf("replicas %d", *rs.Spec.Replicas)
	}
	if a := rs.Annotations; a[RevisionAnnotation] != "1" || a[DesiredReplicasAnnotation] != "3" || a[MaxReplicasAnnotation] != "4" {
		t.Errorf("annotations %v", a)
	}
	got := f.deployment("web")
	if got.Annotations[RevisionAnnotation] != "1" {
		t.Errorf("deployment revision %q", got.Annotations[RevisionAnnotation])
	}
	if c := getCondition(got.Status, appsv1.DeploymentProgressing); c == nil || c.Reason != ReasonNewReplicaSet || c.Message != fmt.Sprintf("Created new replica set %q", name) {
		t.Errorf("Progressing %+v", c)
	}
}

func TestRollingUpdateSurgesFirstThenScalesDownOnAvailability(t *testing.T) {
	// maxSurge 1, maxUnavailable 0: the new template gets one pod first.
	d := newDeployment(3, intstr.FromInt32(1), intstr.FromInt32(0), "2")
	d.Annotations = map[string]string{RevisionAnnotation: "1"}
	old := replicaSetFor(d, "1", 1, 3, 3, time.Hour)
	f := newFixture(t, d, old)
	f.sync(d)
	tmpl := template("2")
	newName := "web-" + history.TemplateHash(&tmpl, nil)
	f.wantWrites("create replicasets "+newName, "patch deployments web", "update deployments/status web", "update deployments/status web")
	if rs := f.rs(newName); *rs.Spec.Replicas != 1 || rs.Annotations[RevisionAnnotation] != "2" {
		t.Errorf("new replica set: %d replicas, revision %s", *rs.Spec.Replicas, rs.Annotations[RevisionAnnotation])
	}
	f.wantEvents("Normal ScalingReplicaSet Scaled up replica set " + newName + " from 0 to 1")

	// The new pod is not available yet: nothing may go.
	d.Annotations[RevisionAnnotation] = "2"
	newRS := replicaSetFor(d, "2", 2, 1, 0, 0)
	f = newFixture(t, d, old, newRS)
	f.sync(d)
	if w := f.writes(); slices.ContainsFunc(w, func(s string) bool { return strings.HasPrefix(s, "update replicasets") }) {
		t.Errorf("scaled with the new pod unavailable: %v", w)
	}

	// Once it is, one old pod goes.
	newRS.Status.AvailableReplicas, newRS.Status.ReadyReplicas = 1, 1
	f = newFixture(t, d, old, newRS)
	f.sync(d)
	if rs := f.rs(old.Name); *rs.Spec.Replicas != 2 {
		t.Errorf("old replica set at %d, want 2", *rs.Spec.Replicas)
	}
	f.wantEvents("Normal ScalingReplicaSet Scaled down replica set " + old.Name + " from 3 to 2")
	got := f.deployment("web")
	if s := got.Status; s.Replicas != 4 || s.UpdatedReplicas != 1 || s.AvailableReplicas != 4 || s.ObservedGeneration != 1 {
		t.Errorf("status %+v", s)
	}
	if c := getCondition(got.Status, appsv1.DeploymentProgressing); c == nil || c.Reason != ReasonReplicaSetUpdated {
		t.Errorf("Progressing %+v", c)
	}
}

func TestRollbackRenumbersTheReusedReplicaSet(t *testing.T) {
	// kubectl rollout undo put template 1 back: its ReplicaSet becomes
	// revision 3 and remembers it was 1.
	d := newDeployment(3, intstr.FromInt32(1), intstr.FromInt32(0), "1")
	d.Annotations = map[string]string{RevisionAnnotation: "2"}
	first := replicaSetFor(d, "1", 1, 0, 0, 2*time.Hour)
	second := replicaSetFor(d, "2", 2, 3, 3, time.Hour)
	f := newFixture(t, d, first, second)
	f.sync(d)
	// Renumbered; the Deployment follows, and the reused ReplicaSet grows
	// by one surge pod.
	f.wantWrites("update replicasets "+first.Name, "patch deployments web", "update deployments/status web",
		"update replicasets "+first.Name, "update deployments/status web")
	rs := f.rs(first.Name)
	if rs.Annotations[RevisionAnnotation] != "3" || rs.Annotations[RevisionHistoryAnnotation] != "1" {
		t.Errorf("revision %s history %s", rs.Annotations[RevisionAnnotation], rs.Annotations[RevisionHistoryAnnotation])
	}
	if got := *rs.Spec.Replicas; got != 1 {
		t.Errorf("reused replica set at %d, want 1 (one surge pod)", got)
	}
	if got := f.deployment("web").Annotations[RevisionAnnotation]; got != "3" {
		t.Errorf("deployment revision %s", got)
	}
	f.wantEvents("Normal ScalingReplicaSet Scaled up replica set " + first.Name + " from 0 to 1")
}

func TestPausedDeploymentDoesNotRollButScales(t *testing.T) {
	d := newDeployment(5, intstr.FromInt32(1), intstr.FromInt32(0), "2")
	d.Spec.Paused = true
	d.Annotations = map[string]string{RevisionAnnotation: "1"}
	old := replicaSetFor(newDeployment(3, intstr.FromInt32(1), intstr.FromInt32(0), "1"), "1", 1, 3, 3, time.Hour)
	f := newFixture(t, d, old)
	f.sync(d)
	f.wantWrites("update deployments/status web", "update replicasets "+old.Name, "update deployments/status web")
	if got := *f.rs(old.Name).Spec.Replicas; got != 5 {
		t.Errorf("old replica set at %d, want 5: scaling applies while paused", got)
	}
	got := f.deployment("web")
	if c := getCondition(got.Status, appsv1.DeploymentProgressing); c == nil || c.Reason != ReasonPaused || c.Status != corev1.ConditionUnknown {
		t.Errorf("Progressing %+v", c)
	}
	f.wantEvents("Normal ScalingReplicaSet Scaled up replica set " + old.Name + " from 3 to 5")

	// Resumed: DeploymentResumed, then the rollout starts.
	d.Spec.Paused = false
	d.Status = got.Status
	old = f.rs(old.Name)
	f = newFixture(t, d, old)
	f.sync(d)
	tmpl := template("2")
	f.wantWrites("update deployments/status web", "create replicasets web-"+history.TemplateHash(&tmpl, nil), "patch deployments web",
		"update deployments/status web", "update deployments/status web")
}

func TestScalingMidRolloutIsProportional(t *testing.T) {
	// 3 old and 1 new pod (max 4); scaled to 6 with surge 1 (max 7).
	before := newDeployment(3, intstr.FromInt32(1), intstr.FromInt32(0), "2")
	old := replicaSetFor(before, "1", 1, 3, 3, time.Hour)
	newRS := replicaSetFor(before, "2", 2, 1, 0, 0)
	d := newDeployment(6, intstr.FromInt32(1), intstr.FromInt32(0), "2")
	d.Annotations = map[string]string{RevisionAnnotation: "2"}
	f := newFixture(t, d, old, newRS)
	f.sync(d)
	if o, n := *f.rs(old.Name).Spec.Replicas, *f.rs(newRS.Name).Spec.Replicas; o != 5 || n != 2 {
		t.Errorf("old %d new %d, want 5 and 2", o, n)
	}
	for _, name := range []string{old.Name, newRS.Name} {
		if a := f.rs(name).Annotations; a[DesiredReplicasAnnotation] != "6" || a[MaxReplicasAnnotation] != "7" {
			t.Errorf("%s annotations %v", name, a)
		}
	}
}

func TestOldReplicaSetsBeyondTheHistoryLimitAreDeleted(t *testing.T) {
	d := newDeployment(1, intstr.FromInt32(1), intstr.FromInt32(0), "4")
	d.Spec.RevisionHistoryLimit = new(int32(1))
	d.Annotations = map[string]string{RevisionAnnotation: "4"}
	d.Status = appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 1, UpdatedReplicas: 1, AvailableReplicas: 1, ReadyReplicas: 1}
	r1 := replicaSetFor(d, "1", 1, 0, 0, 3*time.Hour)
	r2 := replicaSetFor(d, "2", 2, 0, 0, 2*time.Hour)
	r3 := replicaSetFor(d, "3", 3, 0, 0, time.Hour)
	cur := replicaSetFor(d, "4", 4, 1, 1, 0)
	f := newFixture(t, d, r3, r1, cur, r2)
	f.sync(d)
	var deleted []string
	for _, w := range f.writes() {
		if name, ok := strings.CutPrefix(w, "delete replicasets "); ok {
			deleted = append(deleted, name)
		}
	}
	if !slices.Equal(deleted, []string{r1.Name, r2.Name}) {
		t.Errorf("deleted %v, want revisions 1 and 2 (%s %s)", deleted, r1.Name, r2.Name)
	}
}

func TestOrphanIsAdoptedAndMismatchedReplicaSetReleased(t *testing.T) {
	d := newDeployment(1, intstr.FromInt32(1), intstr.FromInt32(0), "1")
	d.Annotations = map[string]string{RevisionAnnotation: "1"}
	orphan := replicaSetFor(d, "1", 1, 1, 1, time.Hour)
	orphan.OwnerReferences = nil
	stray := replicaSetFor(d, "9", 1, 0, 0, time.Hour)
	stray.Labels = map[string]string{"app": "other"}
	theirs := replicaSetFor(d, "8", 1, 0, 0, time.Hour)
	theirs.OwnerReferences[0].UID = "someone-else"
	f := newFixture(t, d, orphan, stray, theirs)
	f.sync(d)
	w := f.writes()
	if !slices.Contains(w, "patch replicasets "+orphan.Name) || !slices.Contains(w, "patch replicasets "+stray.Name) {
		t.Errorf("writes %v: no adoption or release", w)
	}
	if slices.Contains(w, "patch replicasets "+theirs.Name) {
		t.Errorf("touched a ReplicaSet another controller owns")
	}
	if !metav1.IsControlledBy(f.rs(orphan.Name), d) {
		t.Errorf("orphan not adopted: %+v", f.rs(orphan.Name).OwnerReferences)
	}
	if len(f.rs(stray.Name).OwnerReferences) != 0 {
		t.Errorf("stray not released: %+v", f.rs(stray.Name).OwnerReferences)
	}
}

func TestRecreateWaitsForOldPodsBeforeCreatingTheNewReplicaSet(t *testing.T) {
	d := newDeployment(2, intstr.FromInt32(0), intstr.FromInt32(1), "2")
	d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
	d.Annotations = map[string]string{RevisionAnnotation: "1"}
	old := replicaSetFor(d, "1", 1, 2, 2, time.Hour)
	f := newFixture(t, d, old)
	f.sync(d)
	f.wantWrites("update replicasets "+old.Name, "update deployments/status web")
	f.wantEvents("Normal ScalingReplicaSet Scaled down replica set " + old.Name + " from 2 to 0")

	// Scaled to 0, but a pod is still terminating: wait.
	old = f.rs(old.Name)
	old.Status.Replicas = 0
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default", Labels: old.Spec.Template.Labels,
		DeletionTimestamp: new(metav1.NewTime(testNow)),
		OwnerReferences:   []metav1.OwnerReference{*metav1.NewControllerRef(old, appsv1.SchemeGroupVersion.WithKind("ReplicaSet"))}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning}}
	f = newFixture(t, d, old, pod)
	f.sync(d)
	if w := f.writes(); slices.ContainsFunc(w, func(s string) bool { return strings.HasPrefix(s, "create") }) {
		t.Errorf("created with an old pod running: %v", w)
	}
	// Gone: the new ReplicaSet comes at full size.
	f = newFixture(t, d, old)
	f.sync(d)
	tmpl := template("2")
	name := "web-" + history.TemplateHash(&tmpl, nil)
	if rs := f.rs(name); *rs.Spec.Replicas != 2 {
		t.Errorf("new replica set at %d", *rs.Spec.Replicas)
	}
}

func TestStuckRolloutExceedsItsProgressDeadline(t *testing.T) {
	d := newDeployment(1, intstr.FromInt32(1), intstr.FromInt32(0), "2")
	d.Spec.ProgressDeadlineSeconds = new(int32(30))
	d.Annotations = map[string]string{RevisionAnnotation: "2"}
	old := replicaSetFor(d, "1", 1, 1, 1, time.Hour)
	newRS := replicaSetFor(d, "2", 2, 1, 0, time.Minute)
	d.Status = appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 2, UpdatedReplicas: 1, AvailableReplicas: 1, ReadyReplicas: 1,
		Conditions: []appsv1.DeploymentCondition{
			{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: ReasonMinimumReplicasAvailable, Message: "Deployment has minimum availability."},
			{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: ReasonReplicaSetUpdated,
				LastUpdateTime: metav1.NewTime(testNow.Add(-time.Minute)), LastTransitionTime: metav1.NewTime(testNow.Add(-time.Minute))}}}
	f := newFixture(t, d, old, newRS)
	f.sync(d)
	c := getCondition(f.deployment("web").Status, appsv1.DeploymentProgressing)
	if c == nil || c.Reason != ReasonTimedOut || c.Status != corev1.ConditionFalse || c.Message != fmt.Sprintf("ReplicaSet %q has timed out progressing.", newRS.Name) {
		t.Errorf("Progressing %+v", c)
	}
}

func TestCompleteRolloutReportsNewReplicaSetAvailable(t *testing.T) {
	d := newDeployment(2, intstr.FromString("25%"), intstr.FromString("25%"), "1")
	d.Annotations = map[string]string{RevisionAnnotation: "1"}
	rs := replicaSetFor(d, "1", 1, 2, 2, time.Hour)
	f := newFixture(t, d, rs)
	f.sync(d)
	got := f.deployment("web").Status
	if got.Replicas != 2 || got.UpdatedReplicas != 2 || got.ReadyReplicas != 2 || got.AvailableReplicas != 2 || got.UnavailableReplicas != 0 || got.ObservedGeneration != 1 {
		t.Errorf("status %+v", got)
	}
	if c := getCondition(got, appsv1.DeploymentAvailable); c == nil || c.Status != corev1.ConditionTrue || c.Reason != ReasonMinimumReplicasAvailable {
		t.Errorf("Available %+v", c)
	}
	if c := getCondition(got, appsv1.DeploymentProgressing); c == nil || c.Reason != ReasonNewRSAvailable || c.Message != fmt.Sprintf("ReplicaSet %q has successfully progressed.", rs.Name) {
		t.Errorf("Progressing %+v", c)
	}
}

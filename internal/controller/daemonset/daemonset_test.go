package daemonset

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
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

var t0 = time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)

type fixture struct {
	c       *Controller
	client  *fake.Clientset
	factory informers.SharedInformerFactory
	events  *record.FakeRecorder
}

// newFixture preloads the listers and the fake API with objs; informers
// are not started, so a test sees exactly the writes of its syncs.
func newFixture(t *testing.T, objs ...runtime.Object) *fixture {
	t.Helper()
	client := fake.NewClientset(objs...)
	var n atomic.Int32
	client.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		pod := a.(k8stesting.CreateAction).GetObject().(*corev1.Pod)
		if pod.Name == "" {
			pod.Name = fmt.Sprintf("%s%d", pod.GenerateName, n.Add(1))
		}
		return false, nil, nil
	})
	factory := informers.NewSharedInformerFactory(client, 0)
	f := &fixture{client: client, factory: factory, events: record.NewFakeRecorder(1000)}
	f.c = New(client, factory, f.events, nil)
	f.c.now = func() time.Time { return t0 }
	f.c.expectations.now = f.c.now
	for _, o := range objs {
		f.add(o)
	}
	t.Cleanup(f.c.queue.ShutDown)
	return f
}

func (f *fixture) add(o runtime.Object) {
	switch o := o.(type) {
	case *appsv1.DaemonSet:
		f.factory.Apps().V1().DaemonSets().Informer().GetIndexer().Add(o)
	case *corev1.Pod:
		f.factory.Core().V1().Pods().Informer().GetIndexer().Add(o)
	case *corev1.Node:
		f.factory.Core().V1().Nodes().Informer().GetIndexer().Add(o)
	case *appsv1.ControllerRevision:
		f.factory.Apps().V1().ControllerRevisions().Informer().GetIndexer().Add(o)
	}
}

func (f *fixture) sync(t *testing.T) {
	t.Helper()
	f.client.ClearActions()
	if err := f.c.sync(context.Background(), "kube-system/fluentd"); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) created(resource string) []runtime.Object {
	var out []runtime.Object
	for _, a := range f.client.Actions() {
		if a.GetVerb() == "create" && a.GetResource().Resource == resource {
			out = append(out, a.(k8stesting.CreateAction).GetObject())
		}
	}
	return out
}

func (f *fixture) deleted() []string {
	var out []string
	for _, a := range f.client.Actions() {
		if a.GetVerb() == "delete" && a.GetResource().Resource == "pods" {
			out = append(out, a.(k8stesting.DeleteAction).GetName())
		}
	}
	slices.Sort(out)
	return out
}

func (f *fixture) status(t *testing.T) *appsv1.DaemonSetStatus {
	t.Helper()
	for _, a := range f.client.Actions() {
		if a.GetVerb() == "update" && a.GetSubresource() == "status" {
			return &a.(k8stesting.UpdateAction).GetObject().(*appsv1.DaemonSet).Status
		}
	}
	return nil
}

func daemonSet(image string) *appsv1.DaemonSet {
	return &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "fluentd", Namespace: "kube-system", UID: "ds-uid", Generation: 1},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"name": "fluentd"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"name": "fluentd"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "f", Image: image}}},
			},
			UpdateStrategy: appsv1.DaemonSetUpdateStrategy{Type: appsv1.RollingUpdateDaemonSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxUnavailable: new(intstr.FromInt32(1)), MaxSurge: new(intstr.FromInt32(0))}},
			RevisionHistoryLimit: new(int32(10)),
		},
	}
}

func node(name string, taints ...corev1.Taint) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"disk": "ssd"}},
		Spec: corev1.NodeSpec{Taints: taints}}
}

// podOn is a ready daemon pod of ds's current template on node.
func podOn(ds *appsv1.DaemonSet, nodeName, name string) *corev1.Pod {
	hash := history.TemplateHash(&ds.Spec.Template, nil)
	p := newPod(ds, nodeName, hash)
	p.Name, p.Namespace, p.UID = name, ds.Namespace, types.UID("uid-"+name)
	p.Spec.NodeName = nodeName
	p.CreationTimestamp = metav1.NewTime(t0.Add(-time.Hour))
	p.Status = corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}
	return p
}

func TestOnePodPerEligibleNodePinnedByAffinity(t *testing.T) {
	ds := daemonSet("fluentd:v1")
	ds.Spec.Template.Spec.Tolerations = []corev1.Toleration{{Key: "dedicated", Value: "logging", Effect: corev1.TaintEffectNoSchedule}}
	f := newFixture(t, ds, node("a"), node("tainted", corev1.Taint{Key: "dedicated", Value: "logging", Effect: corev1.TaintEffectNoSchedule}),
		node("other", corev1.Taint{Key: "gpu", Effect: corev1.TaintEffectNoSchedule}))
	f.sync(t)
	pods := f.created("pods")
	var targets []string
	for _, o := range pods {
		p := o.(*corev1.Pod)
		targets = append(targets, targetNode(p))
		if p.Spec.NodeName != "" {
			t.Errorf("pod bound by the controller to %s: the scheduler binds", p.Spec.NodeName)
		}
		if p.Labels[history.HashLabel] == "" || p.Labels[TemplateGenerationLabel] != "1" {
			t.Errorf("labels %v", p.Labels)
		}
		keys := map[string]bool{}
		for _, tol := range p.Spec.Tolerations {
			keys[tol.Key+":"+string(tol.Effect)] = true
		}
		for _, want := range []string{"node.kubernetes.io/not-ready:NoExecute", "node.kubernetes.io/unreachable:NoExecute",
			"node.kubernetes.io/disk-pressure:NoSchedule", "node.kubernetes.io/memory-pressure:NoSchedule",
			"node.kubernetes.io/pid-pressure:NoSchedule", "node.kubernetes.io/unschedulable:NoSchedule", "dedicated:NoSchedule"} {
			if !keys[want] {
				t.Errorf("toleration %s missing: %v", want, p.Spec.Tolerations)
			}
		}
		if keys["node.kubernetes.io/network-unavailable:NoSchedule"] {
			t.Error("network-unavailable tolerated without hostNetwork")
		}
	}
	slices.Sort(targets)
	if !slices.Equal(targets, []string{"a", "tainted"}) {
		t.Errorf("pods for %v, want a and tainted", targets)
	}
	revs := f.created("controllerrevisions")
	if len(revs) != 1 {
		t.Fatalf("%d revisions made", len(revs))
	}
	rev := revs[0].(*appsv1.ControllerRevision)
	if rev.Revision != 1 || rev.Name != "fluentd-"+history.TemplateHash(&ds.Spec.Template, nil) {
		t.Errorf("revision %s #%d", rev.Name, rev.Revision)
	}
	if s := f.status(t); s == nil || s.DesiredNumberScheduled != 2 || s.CurrentNumberScheduled != 0 || s.ObservedGeneration != 1 {
		t.Errorf("status %+v", s)
	}
}

func TestNodeSelectorAndAffinityDecideEligibility(t *testing.T) {
	ds := daemonSet("v1")
	ds.Spec.Template.Spec.NodeSelector = map[string]string{"disk": "ssd"}
	hdd := node("hdd")
	hdd.Labels = map[string]string{"disk": "hdd"}
	if run, _ := shouldRun(hdd, ds); run {
		t.Error("node selector ignored")
	}
	if run, _ := shouldRun(node("ssd"), ds); !run {
		t.Error("matching node refused")
	}
	ds.Spec.Template.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
		NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{"x"}}}}}}}}
	if run, _ := shouldRun(node("ssd"), ds); run {
		t.Error("required affinity ignored")
	}
	noExec := node("n", corev1.Taint{Key: "k", Effect: corev1.TaintEffectNoExecute})
	ds.Spec.Template.Spec.Affinity = nil
	if run, keep := shouldRun(noExec, ds); run || keep {
		t.Error("untolerated NoExecute taint: pods must go")
	}
	noSched := node("n", corev1.Taint{Key: "k", Effect: corev1.TaintEffectNoSchedule})
	if run, keep := shouldRun(noSched, ds); run || !keep {
		t.Error("untolerated NoSchedule taint: no new pod, the running one stays")
	}
	cordoned := node("n", corev1.Taint{Key: corev1.TaintNodeUnschedulable, Effect: corev1.TaintEffectNoSchedule})
	if run, _ := shouldRun(cordoned, ds); !run {
		t.Error("daemon pods tolerate cordoned nodes")
	}
}

func TestStatusCountsAndMisscheduledPodsGo(t *testing.T) {
	ds := daemonSet("v1")
	gone := node("gone", corev1.Taint{Key: "k", Effect: corev1.TaintEffectNoExecute})
	f := newFixture(t, ds, node("a"), node("b"), gone, podOn(ds, "a", "pa"), podOn(ds, "b", "pb1"), podOn(ds, "gone", "pg"))
	dup := podOn(ds, "b", "pb2")
	dup.CreationTimestamp = metav1.NewTime(t0)
	f.add(dup)
	f.client.Tracker().Add(dup)
	f.sync(t)
	if got := f.deleted(); !slices.Equal(got, []string{"pb2", "pg"}) {
		t.Errorf("deleted %v, want the younger duplicate and the pod of the NoExecute node", got)
	}
	s := f.status(t)
	if s == nil || s.DesiredNumberScheduled != 2 || s.CurrentNumberScheduled != 2 || s.NumberMisscheduled != 1 ||
		s.NumberReady != 2 || s.NumberAvailable != 2 || s.UpdatedNumberScheduled != 2 || s.NumberUnavailable != 0 {
		t.Errorf("status %+v", s)
	}
}

func TestRollingUpdateReplacesMaxUnavailableAtATime(t *testing.T) {
	old := daemonSet("v1")
	ds := daemonSet("v2")
	ds.Generation = 2
	f := newFixture(t, ds, node("a"), node("b"), node("c"), podOn(old, "a", "pa"), podOn(old, "b", "pb"), podOn(old, "c", "pc"))
	f.sync(t)
	if got := f.deleted(); len(got) != 1 {
		t.Errorf("deleted %v, want one old pod (maxUnavailable 1)", got)
	}
	if len(f.created("pods")) != 0 {
		t.Error("a pod was created while the old ones still run")
	}
	if s := f.status(t); s == nil || s.UpdatedNumberScheduled != 0 {
		t.Errorf("status %+v", s)
	}
}

// An unavailable old pod is replaced at once but counts against
// maxUnavailable: with one of three nodes down, no available pod goes.
func TestRollingUpdateCountsUnavailableOldPods(t *testing.T) {
	old := daemonSet("v1")
	ds := daemonSet("v2")
	ds.Generation = 2
	down := podOn(old, "a", "pa")
	down.Status.Conditions[0].Status = corev1.ConditionFalse
	f := newFixture(t, ds, node("a"), node("b"), node("c"), down, podOn(old, "b", "pb"), podOn(old, "c", "pc"))
	f.sync(t)
	if got := f.deleted(); !slices.Equal(got, []string{"pa"}) {
		t.Errorf("deleted %v, want only the unavailable pa (maxUnavailable 1)", got)
	}
}

// An old pod on a node the DaemonSet no longer schedules to, but keeps
// running on (a NoSchedule taint came), is replaced by nothing.
func TestRollingUpdateRemovesOldPodsOnNodesNoLongerScheduled(t *testing.T) {
	old := daemonSet("v1")
	ds := daemonSet("v2")
	ds.Generation = 2
	cur := podOn(ds, "a", "pa")
	f := newFixture(t, ds, node("a"), node("tainted", corev1.Taint{Key: "gpu", Effect: corev1.TaintEffectNoSchedule}),
		cur, podOn(old, "tainted", "pt"))
	f.sync(t)
	if got := f.deleted(); !slices.Equal(got, []string{"pt"}) {
		t.Errorf("deleted %v, want the old pod on the tainted node", got)
	}
	if len(f.created("pods")) != 0 {
		t.Error("a pod was made for the tainted node")
	}
}

func TestRollingUpdateWithSurgeStartsNewPodsFirst(t *testing.T) {
	old := daemonSet("v1")
	ds := daemonSet("v2")
	ds.Generation = 2
	ds.Spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateDaemonSet{MaxUnavailable: new(intstr.FromInt32(0)), MaxSurge: new(intstr.FromInt32(1))}
	f := newFixture(t, ds, node("a"), node("b"), podOn(old, "a", "pa"), podOn(old, "b", "pb"))
	f.sync(t)
	if got := f.deleted(); len(got) != 0 {
		t.Errorf("deleted %v before the new pods are available", got)
	}
	if got := f.created("pods"); len(got) != 1 {
		t.Errorf("created %d pods, want one (maxSurge 1)", len(got))
	}
}

func TestOnDeleteLeavesOldPods(t *testing.T) {
	old := daemonSet("v1")
	ds := daemonSet("v2")
	ds.Generation = 2
	ds.Spec.UpdateStrategy = appsv1.DaemonSetUpdateStrategy{Type: appsv1.OnDeleteDaemonSetStrategyType}
	f := newFixture(t, ds, node("a"), podOn(old, "a", "pa"))
	f.sync(t)
	if len(f.deleted()) != 0 || len(f.created("pods")) != 0 {
		t.Errorf("OnDelete touched pods: deleted %v", f.deleted())
	}
}

func TestReturningTemplateReusesAndRenumbersItsRevision(t *testing.T) {
	ds := daemonSet("v1")
	v1Patch, _ := history.TemplatePatch(&ds.Spec.Template)
	v2Patch, _ := history.TemplatePatch(&daemonSet("v2").Spec.Template)
	r1 := history.New(ds, controllerKind, ds.Spec.Template.Labels, nil, v1Patch, history.TemplateHash(&ds.Spec.Template, nil), 1)
	r2 := history.New(ds, controllerKind, ds.Spec.Template.Labels, nil, v2Patch, "v2hash", 2)
	f := newFixture(t, ds, node("a"), r1, r2, podOn(ds, "a", "pa"))
	f.sync(t)
	if len(f.created("controllerrevisions")) != 0 {
		t.Error("a new revision was made for a known template")
	}
	got, _ := f.client.AppsV1().ControllerRevisions("kube-system").Get(context.Background(), r1.Name, metav1.GetOptions{})
	if got.Revision != 3 {
		t.Errorf("reused revision is #%d, want 3", got.Revision)
	}
}

func TestHistoryBeyondTheLimitIsPruned(t *testing.T) {
	ds := daemonSet("v9")
	ds.Spec.RevisionHistoryLimit = new(int32(1))
	objs := []runtime.Object{ds, node("a"), podOn(ds, "a", "pa")}
	for i := 1; i <= 3; i++ {
		tpl := daemonSet(fmt.Sprint("v", i)).Spec.Template
		data, _ := history.TemplatePatch(&tpl)
		objs = append(objs, history.New(ds, controllerKind, tpl.Labels, nil, data, history.TemplateHash(&tpl, nil), int64(i)))
	}
	f := newFixture(t, objs...)
	f.sync(t)
	left, _ := f.client.AppsV1().ControllerRevisions("kube-system").List(context.Background(), metav1.ListOptions{})
	if len(left.Items) != 2 {
		t.Errorf("%d revisions left, want the current one and one old", len(left.Items))
	}
}

func TestFailedPodIsDeletedWithBackOff(t *testing.T) {
	ds := daemonSet("v1")
	failed := podOn(ds, "a", "pa")
	failed.Status.Phase = corev1.PodFailed
	f := newFixture(t, ds, node("a"), failed)
	f.sync(t)
	if got := f.deleted(); !slices.Equal(got, []string{"pa"}) {
		t.Fatalf("deleted %v", got)
	}
	if ev := <-f.events.Events; ev != "Warning FailedDaemonPod Found failed daemon pod kube-system/pa on node a, will try to kill it" {
		t.Errorf("event %q", ev)
	}
	// The next failure on the node within the back-off waits.
	again := podOn(ds, "a", "pa2")
	again.Status.Phase = corev1.PodFailed
	f.factory.Core().V1().Pods().Informer().GetIndexer().Delete(failed)
	f.add(again)
	f.c.expectations.forget("kube-system/fluentd")
	f.sync(t)
	if got := f.deleted(); len(got) != 0 {
		t.Errorf("deleted %v within the back-off", got)
	}
}

func TestFailingCreatesStopAfterTheFirstBatch(t *testing.T) {
	ds := daemonSet("v1")
	f := newFixture(t, ds, node("a"), node("b"), node("c"), node("d"))
	f.client.PrependReactor("create", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, fmt.Errorf("quota exceeded")
	})
	f.client.ClearActions()
	if err := f.c.sync(context.Background(), "kube-system/fluentd"); err == nil {
		t.Fatal("no error from failing creates")
	}
	var tries int
	for _, a := range f.client.Actions() {
		if a.GetVerb() == "create" && a.GetResource().Resource == "pods" {
			tries++
		}
	}
	if tries != 1 {
		t.Errorf("%d creates tried, want 1 (slow start)", tries)
	}
	if !f.c.expectations.satisfied("kube-system/fluentd") {
		t.Error("creates never made are still expected")
	}
}

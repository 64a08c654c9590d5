package history

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"testing"

	"github.com/davecgh/go-spew/spew"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
)

var dsKind = appsv1.SchemeGroupVersion.WithKind("DaemonSet")

func owner() *appsv1.DaemonSet {
	return &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "fluentd", Namespace: "kube-system", UID: "ds-uid"}}
}

func template(image string) *corev1.PodTemplateSpec {
	return &corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"name": "fluentd"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "f", Image: image}}},
	}
}

// spewHash is ComputeHash as Kubernetes wrote it with spew, by hand.
func spewHash(t *corev1.PodTemplateSpec) string {
	h := fnv.New32a()
	printer := spew.ConfigState{Indent: " ", SortKeys: true, DisableMethods: true, SpewKeys: true}
	printer.Fprintf(h, "%#v", *t)
	return rand.SafeEncodeString(fmt.Sprint(h.Sum32()))
}

func TestTemplateHashIsKubernetesComputeHash(t *testing.T) {
	tpl := template("fluentd:v1")
	if got, want := TemplateHash(tpl, nil), spewHash(tpl); got != want {
		t.Errorf("TemplateHash = %s, Kubernetes gives %s", got, want)
	}
	one := int32(1)
	if TemplateHash(tpl, &one) == TemplateHash(tpl, nil) {
		t.Error("the collision count does not change the hash")
	}
	if TemplateHash(tpl, nil) == TemplateHash(template("fluentd:v2"), nil) {
		t.Error("two templates, one hash")
	}
	zero := int32(0)
	seen := map[string]bool{}
	for _, cc := range []*int32{nil, &zero, &one} {
		h := TemplateHash(tpl, cc)
		if seen[h] {
			t.Errorf("collisionCount %v does not change the hash %s", cc, h)
		}
		seen[h] = true
		if len(h) == 0 || len(h) > 10 || strings.Trim(h, "bcdfghjklmnpqrstvwxz2456789") != "" {
			t.Errorf("hash %q is not rand.SafeEncodeString of a uint32", h)
		}
	}
}

func TestTemplatePatchReplacesTheWholeTemplate(t *testing.T) {
	data, err := TemplatePatch(template("fluentd:v1"))
	if err != nil {
		t.Fatal(err)
	}
	// kubectl's getDaemonSetPatch: spec.template with "$patch":"replace".
	want := `{"spec":{"template":{"$patch":"replace","metadata":{"labels":{"name":"fluentd"}},"spec":{"containers":[{"image":"fluentd:v1","name":"f","resources":{}}]}}}}`
	if string(data) != want {
		t.Errorf("patch\n got %s\nwant %s", data, want)
	}
}

func TestNewNamesLabelsAndOwnsTheRevision(t *testing.T) {
	ds := owner()
	r := New(ds, dsKind, map[string]string{"name": "fluentd"}, map[string]string{"a": "b"}, []byte("{}"), "abc12", 3)
	if r.Name != "fluentd-abc12" || r.Namespace != "kube-system" || r.Revision != 3 {
		t.Errorf("name %s/%s revision %d", r.Namespace, r.Name, r.Revision)
	}
	if r.Labels["name"] != "fluentd" || r.Labels[HashLabel] != "abc12" || r.Annotations["a"] != "b" {
		t.Errorf("labels %v annotations %v", r.Labels, r.Annotations)
	}
	ref := metav1.GetControllerOf(r)
	if ref == nil || ref.UID != "ds-uid" || ref.Kind != "DaemonSet" || ref.BlockOwnerDeletion == nil || !*ref.BlockOwnerDeletion {
		t.Errorf("owner reference %+v", ref)
	}
	if len(Name(strings.Repeat("x", 300), "h")) != 225 {
		t.Error("long owner names are not cut")
	}
}

func TestNextIsOneMoreThanTheHighest(t *testing.T) {
	if Next(nil) != 1 {
		t.Error("first revision is not 1")
	}
	revs := []*appsv1.ControllerRevision{{Revision: 2}, {Revision: 7}, {Revision: 3}}
	if Next(revs) != 8 {
		t.Errorf("Next = %d", Next(revs))
	}
	Sort(revs)
	if revs[0].Revision != 2 || revs[2].Revision != 7 {
		t.Errorf("sorted %d %d %d", revs[0].Revision, revs[1].Revision, revs[2].Revision)
	}
}

func newHistory(t *testing.T, revs ...*appsv1.ControllerRevision) (*History, *fake.Clientset) {
	t.Helper()
	client := fake.NewClientset()
	factory := informers.NewSharedInformerFactory(client, 0)
	idx := factory.Apps().V1().ControllerRevisions().Informer().GetIndexer()
	for _, r := range revs {
		if _, err := client.AppsV1().ControllerRevisions(r.Namespace).Create(context.Background(), r, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		idx.Add(r)
	}
	return &History{Client: client.AppsV1(), Lister: factory.Apps().V1().ControllerRevisions().Lister()}, client
}

func TestCreateReturnsTheSameRevisionAndReportsACollision(t *testing.T) {
	ds := owner()
	existing := New(ds, dsKind, nil, nil, []byte(`{"a":1}`), "h", 1)
	h, _ := newHistory(t, existing)
	got, err := h.Create(context.Background(), New(ds, dsKind, nil, nil, []byte(`{"a":1}`), "h", 2))
	if err != nil || got.Revision != 1 {
		t.Fatalf("same data: %v %v", got, err)
	}
	_, err = h.Create(context.Background(), New(ds, dsKind, nil, nil, []byte(`{"a":2}`), "h", 2))
	if _, ok := err.(*CollisionError); !ok {
		t.Fatalf("other data under the same name: err = %v, want a CollisionError", err)
	}
}

func TestListAdoptsOrphansAndSkipsOthers(t *testing.T) {
	ds := owner()
	mine := New(ds, dsKind, map[string]string{"name": "fluentd"}, nil, []byte("1"), "a", 1)
	orphan := New(ds, dsKind, map[string]string{"name": "fluentd"}, nil, []byte("2"), "b", 2)
	orphan.OwnerReferences = nil
	theirs := New(&appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: "kube-system", UID: "other"}}, dsKind,
		map[string]string{"name": "fluentd"}, nil, []byte("3"), "c", 1)
	h, client := newHistory(t, mine, orphan, theirs)
	selector := labels.SelectorFromSet(labels.Set{"name": "fluentd"})

	// An owner that a fresh read says is going adopts nothing.
	gone := errors.New("daemonset kube-system/fluentd changed: not adopting")
	if _, err := h.List(context.Background(), ds, dsKind, selector, func() error { return gone }); !errors.Is(err, gone) {
		t.Fatalf("List with a failing owner check: %v", err)
	}
	if r, _ := client.AppsV1().ControllerRevisions("kube-system").Get(context.Background(), orphan.Name, metav1.GetOptions{}); len(r.OwnerReferences) != 0 {
		t.Fatalf("orphan adopted by an owner being deleted: %+v", r.OwnerReferences)
	}

	got, err := h.List(context.Background(), ds, dsKind, selector, func() error { return nil })
	if err != nil || len(got) != 2 {
		t.Fatalf("listed %d, err %v", len(got), err)
	}
	adopted, _ := client.AppsV1().ControllerRevisions("kube-system").Get(context.Background(), orphan.Name, metav1.GetOptions{})
	if !metav1.IsControlledBy(adopted, ds) {
		t.Errorf("orphan not adopted: %+v", adopted.OwnerReferences)
	}
}

func TestPruneDeletesOldestUnusedBeyondTheLimit(t *testing.T) {
	ds := owner()
	var revs []*appsv1.ControllerRevision
	for i := 1; i <= 5; i++ {
		revs = append(revs, New(ds, dsKind, nil, nil, json.RawMessage(fmt.Sprint(i)), fmt.Sprint("h", i), int64(i)))
	}
	h, client := newHistory(t, revs...)
	// Revision 1 still has pods: 2 and 3 go, leaving three.
	live := func(r *appsv1.ControllerRevision) bool { return r.Revision == 1 }
	if err := h.Prune(context.Background(), revs, 3, live); err != nil {
		t.Fatal(err)
	}
	left, _ := client.AppsV1().ControllerRevisions("kube-system").List(context.Background(), metav1.ListOptions{})
	var names []string
	for _, r := range left.Items {
		names = append(names, r.Name)
	}
	if strings.Join(names, ",") != "fluentd-h1,fluentd-h4,fluentd-h5" {
		t.Errorf("left %v", names)
	}

	// A negative limit keeps every revision.
	if err := h.Prune(context.Background(), revs, -1, func(*appsv1.ControllerRevision) bool { return false }); err != nil {
		t.Fatal(err)
	}
	if after, _ := client.AppsV1().ControllerRevisions("kube-system").List(context.Background(), metav1.ListOptions{}); len(after.Items) != 3 {
		t.Errorf("a negative limit pruned: %d left, want 3", len(after.Items))
	}
}

func TestRenumberMakesARevisionTheNewest(t *testing.T) {
	r := New(owner(), dsKind, nil, nil, []byte("1"), "h", 1)
	h, _ := newHistory(t, r)
	got, err := h.Renumber(context.Background(), r, 4)
	if err != nil || got.Revision != 4 {
		t.Fatalf("%v %v", got, err)
	}
}

func TestDataHashDependsOnDataAndCollisionCount(t *testing.T) {
	one := int32(1)
	a, b, c := DataHash([]byte("a"), nil), DataHash([]byte("b"), nil), DataHash([]byte("a"), &one)
	if a == b || a == c || a != DataHash([]byte("a"), nil) {
		t.Errorf("hashes %s %s %s", a, b, c)
	}
}

func TestOwnerCheckReadsOnceAndRefusesAGoingOrNewOwner(t *testing.T) {
	ds := owner()
	reads := 0
	check := OwnerCheck(ds, func() (metav1.Object, error) { reads++; return ds, nil })
	if check() != nil || check() != nil || reads != 1 {
		t.Errorf("a live owner: reads %d, want 1 and no error", reads)
	}
	going := ds.DeepCopy()
	going.DeletionTimestamp = &metav1.Time{}
	other := ds.DeepCopy()
	other.UID = "new"
	for _, fresh := range []*appsv1.DaemonSet{going, other} {
		if err := OwnerCheck(ds, func() (metav1.Object, error) { return fresh, nil })(); err == nil {
			t.Errorf("owner %+v: adoption allowed", fresh.ObjectMeta)
		}
	}
}

package podevents

import (
	"slices"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
)

// recorder is a Queue that remembers what was queued.
type recorder struct {
	added []string
	after map[string]time.Duration
}

func (r *recorder) Add(key string) { r.added = append(r.added, key) }
func (r *recorder) AddAfter(key string, d time.Duration) {
	if r.after == nil {
		r.after = map[string]time.Duration{}
	}
	r.after[key] = d
}

// owners are the live controllers, ReplicaSets "web" and "api" (uid =
// name), which match pods labelled app=<name>; "web" has minReadySeconds 5.
func newRouter() (*Router[*appsv1.ReplicaSet], *recorder, *[]string) {
	q := &recorder{}
	var observed []string
	owners := map[string]*appsv1.ReplicaSet{}
	for _, name := range []string{"web", "api"} {
		owners[name] = &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: types.UID(name)}}
	}
	owners["web"].Spec.MinReadySeconds = 5
	return &Router[*appsv1.ReplicaSet]{
		Queue: q,
		Kind:  "ReplicaSet",
		Get: func(namespace, name string) (*appsv1.ReplicaSet, error) {
			if o, ok := owners[name]; ok {
				return o, nil
			}
			return nil, apierrors.NewNotFound(appsv1.Resource("replicasets"), name)
		},
		Matching: func(pod *corev1.Pod) ([]*appsv1.ReplicaSet, error) {
			if o, ok := owners[pod.Labels["app"]]; ok {
				return []*appsv1.ReplicaSet{o}, nil
			}
			return nil, nil
		},
		MinReadySeconds: func(rs *appsv1.ReplicaSet) int32 { return rs.Spec.MinReadySeconds },
		Created:         func(key string) { observed = append(observed, "created "+key) },
		Deleted:         func(key string, pod *corev1.Pod) { observed = append(observed, "deleted "+key+" "+pod.Name) },
	}, q, &observed
}

func pod(name, rv, owner, app string, ready bool) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", ResourceVersion: rv}}
	if app != "" {
		p.Labels = map[string]string{"app": app}
	}
	if owner != "" {
		p.OwnerReferences = []metav1.OwnerReference{{Kind: "ReplicaSet", Name: owner, UID: types.UID(owner), Controller: new(true)}}
	}
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: status}}
	return p
}

func TestOwnedPodsGoToTheirOwnerAndOrphansToTheMatching(t *testing.T) {
	r, q, observed := newRouter()
	h := r.Handler()
	h.OnAdd(pod("a", "1", "web", "web", false), false)
	h.OnAdd(pod("b", "1", "", "api", false), false)
	h.OnAdd(pod("c", "1", "gone", "web", false), false) // owner gone: nobody
	if want := []string{"ns/web", "ns/api"}; !slices.Equal(q.added, want) {
		t.Errorf("queued %v, want %v", q.added, want)
	}
	if want := []string{"created ns/web"}; !slices.Equal(*observed, want) {
		t.Errorf("observed %v, want %v", *observed, want)
	}
}

func TestUpdates(t *testing.T) {
	for _, tc := range []struct {
		name     string
		old, cur *corev1.Pod
		queued   []string
		after    map[string]time.Duration
		observed []string
	}{
		{"a resync changes nothing", pod("a", "1", "web", "web", false), pod("a", "1", "web", "web", false), nil, nil, nil},
		{"an owned pod's change goes to its owner", pod("a", "1", "web", "web", false), pod("a", "2", "web", "web", false), []string{"ns/web"}, nil, nil},
		{"a pod just ready is looked at again after minReadySeconds", pod("a", "1", "web", "web", false), pod("a", "2", "web", "web", true),
			[]string{"ns/web"}, map[string]time.Duration{"ns/web": 6 * time.Second}, nil},
		{"a released pod goes to its old owner and to those that match it", pod("a", "1", "web", "web", true), pod("a", "2", "", "api", true),
			[]string{"ns/web", "ns/api"}, nil, nil},
		{"a pod moved to another owner goes to both", pod("a", "1", "web", "web", true), pod("a", "2", "api", "api", true),
			[]string{"ns/web", "ns/api"}, nil, nil},
		{"an orphan relabelled goes to those that match it now", pod("a", "1", "", "web", true), pod("a", "2", "", "api", true),
			[]string{"ns/api"}, nil, nil},
		{"an orphan's other change goes nowhere", pod("a", "1", "", "web", false), pod("a", "2", "", "web", true), nil, nil, nil},
		{"a graceful delete is the deletion", pod("a", "1", "web", "web", true), func() *corev1.Pod {
			p := pod("a", "2", "web", "web", true)
			p.DeletionTimestamp = &metav1.Time{Time: time.Now()}
			return p
		}(), []string{"ns/web"}, nil, []string{"deleted ns/web a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, q, observed := newRouter()
			r.Handler().OnUpdate(tc.old, tc.cur)
			if !slices.Equal(q.added, tc.queued) {
				t.Errorf("queued %v, want %v", q.added, tc.queued)
			}
			if len(q.after) != len(tc.after) || q.after["ns/web"] != tc.after["ns/web"] {
				t.Errorf("queued later %v, want %v", q.after, tc.after)
			}
			if !slices.Equal(*observed, tc.observed) {
				t.Errorf("observed %v, want %v", *observed, tc.observed)
			}
		})
	}
}

func TestDeletesReachTheOwnerAlsoThroughATombstone(t *testing.T) {
	r, q, observed := newRouter()
	h := r.Handler()
	h.OnDelete(pod("a", "1", "web", "web", true))
	h.OnDelete(cache.DeletedFinalStateUnknown{Key: "ns/b", Obj: pod("b", "1", "api", "api", true)})
	h.OnDelete(pod("c", "1", "", "web", true)) // an orphan: nobody waits for it
	if want := []string{"ns/web", "ns/api"}; !slices.Equal(q.added, want) {
		t.Errorf("queued %v, want %v", q.added, want)
	}
	if want := []string{"deleted ns/web a", "deleted ns/api b"}; !slices.Equal(*observed, want) {
		t.Errorf("observed %v, want %v", *observed, want)
	}
}

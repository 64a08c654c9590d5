package e2e

// The StatefulSet policies as a user sees them: the OnDelete update
// strategy, rolling updates with maxUnavailable, the Parallel pod
// management policy and the claim retention policy.

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
)

// envV2 changes the web template: a new revision.
const envV2 = `{"spec":{"template":{"spec":{"containers":[{"name":"main","env":[{"name":"V","value":"2"}]}]}}}}`

// webPods lists the web pods by name, those being deleted included.
func webPods(t *testing.T, c kubernetes.Interface) map[string]corev1.Pod {
	t.Helper()
	list, err := c.CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]corev1.Pod{}
	for _, p := range list.Items {
		out[p.Name] = p
	}
	return out
}

func getWeb(t *testing.T, c kubernetes.Interface) *appsv1.StatefulSet {
	t.Helper()
	set, err := c.AppsV1().StatefulSets("default").Get(context.Background(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// settledRevision waits until the set has one revision other than old
// that all n pods run, and returns it.
func settledRevision(t *testing.T, c kubernetes.Interface, n int, old string) string {
	t.Helper()
	var rev string
	eventually(t, 60*time.Second, until("all pods at one new revision", func() (bool, string) {
		set := getWeb(t, c)
		rev = set.Status.UpdateRevision
		revs := revisionOfPods(t, c)
		for i := range n {
			if revs[fmt.Sprintf("web-%d", i)] != rev {
				return false, fmt.Sprintf("status %+v pods %v", set.Status, revs)
			}
		}
		return rev != "" && rev != old && set.Status.CurrentRevision == rev, fmt.Sprintf("status %+v pods %v", set.Status, revs)
	}))
	return rev
}

// withData gives the set the claim template "data", mounted at /data:
// pod web-N gets the claim data-web-N. The claims are deleted at the end.
func withData(t *testing.T, c kubernetes.Interface, set *appsv1.StatefulSet, policy *appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy) {
	t.Helper()
	set.Spec.PersistentVolumeClaimRetentionPolicy = policy
	set.Spec.Template.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
	set.Spec.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "data"},
		Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("10Mi")}}}}}
	t.Cleanup(func() {
		for i := range int(*set.Spec.Replicas) {
			_ = c.CoreV1().PersistentVolumeClaims("default").Delete(context.Background(), fmt.Sprintf("data-web-%d", i), metav1.DeleteOptions{})
		}
	})
}

// webClaims are the data-web-N claims by name, those being deleted included.
func webClaims(t *testing.T, c kubernetes.Interface) map[string]corev1.PersistentVolumeClaim {
	t.Helper()
	list, err := c.CoreV1().PersistentVolumeClaims("default").List(context.Background(), metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]corev1.PersistentVolumeClaim{}
	for _, claim := range list.Items {
		out[claim.Name] = claim
	}
	return out
}

// claimsKept checks now and then for d that the claims stay as they
// are: same UID, not being deleted.
func claimsKept(t *testing.T, c kubernetes.Interface, want map[string]corev1.PersistentVolumeClaim, d time.Duration) {
	t.Helper()
	for end := time.Now().Add(d); ; time.Sleep(200 * time.Millisecond) {
		got := webClaims(t, c)
		for name, claim := range want {
			g, ok := got[name]
			if !ok {
				t.Fatalf("claim %s was deleted", name)
			}
			if g.UID != claim.UID || g.DeletionTimestamp != nil {
				t.Fatalf("claim %s was replaced or is being deleted: %+v", name, g.ObjectMeta)
			}
		}
		if time.Now().After(end) {
			return
		}
	}
}

func TestStatefulSetOnDeleteReplacesOnlyThePodsTheUserDeletes(t *testing.T) {
	s, c := startAgentServer(t)
	ctx := context.Background()
	set := webSet(3, appsv1.ParallelPodManagement, `exec sleep 3600`)
	set.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType}
	createWeb(t, c, set)
	before := readyWebPods(t, c, 3, 60*time.Second)
	rev1 := settledRevision(t, c, 3, "")

	s.mustKubectl("patch", "statefulset/web", "-p", envV2)
	var rev2 string
	eventually(t, 30*time.Second, until("a new update revision", func() (bool, string) {
		got := getWeb(t, c)
		rev2 = got.Status.UpdateRevision
		return rev2 != "" && rev2 != rev1 && got.Status.CurrentRevision == rev1, fmt.Sprintf("%+v", got.Status)
	}))
	// A rolling update would have replaced web-2 by now.
	for end := time.Now().Add(4 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		pods := webPods(t, c)
		for name, was := range before {
			p, ok := pods[name]
			if !ok || p.UID != was.UID || p.DeletionTimestamp != nil || p.Labels["controller-revision-hash"] != rev1 {
				t.Fatalf("%s was replaced without being deleted: %+v", name, p.ObjectMeta)
			}
		}
	}

	if err := c.CoreV1().Pods("default").Delete(ctx, "web-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, until("web-1 replaced and ready", func() (bool, string) {
		p := webPods(t, c)["web-1"]
		return p.UID != "" && p.UID != before["web-1"].UID && p.Status.Phase == corev1.PodRunning && podReady(&p),
			fmt.Sprintf("uid %s phase %s", p.UID, p.Status.Phase)
	}))
	pods := webPods(t, c)
	if p := pods["web-1"]; p.Labels["controller-revision-hash"] != rev2 || p.Spec.Containers[0].Env[0].Value != "2" {
		t.Errorf("new web-1: revision %s V=%s, want %s and V=2", p.Labels["controller-revision-hash"], p.Spec.Containers[0].Env[0].Value, rev2)
	}
	for _, name := range []string{"web-0", "web-2"} {
		if p := pods[name]; p.UID != before[name].UID || p.Labels["controller-revision-hash"] != rev1 {
			t.Errorf("%s: uid %s revision %s, want it untouched at %s", name, p.UID, p.Labels["controller-revision-hash"], rev1)
		}
	}
	eventually(t, 30*time.Second, until("status counts one updated pod", func() (bool, string) {
		st := getWeb(t, c).Status
		return st.UpdateRevision == rev2 && st.CurrentRevision == rev1 && st.UpdatedReplicas == 1 && st.CurrentReplicas == 2 &&
			st.ReadyReplicas == 3, fmt.Sprintf("%+v", st)
	}))

	// Once the user has replaced every pod the update is complete: the
	// update revision becomes the current one, as in Kubernetes since 1.36
	// (kubernetes#136833).
	for _, name := range []string{"web-0", "web-2"} {
		if err := c.CoreV1().Pods("default").Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 60*time.Second, until("all pods replaced and the new revision current", func() (bool, string) {
		st := getWeb(t, c).Status
		revs := revisionOfPods(t, c)
		return revs["web-0"] == rev2 && revs["web-1"] == rev2 && revs["web-2"] == rev2 &&
				st.CurrentRevision == rev2 && st.UpdateRevision == rev2 && st.CurrentReplicas == 3 && st.UpdatedReplicas == 3,
			fmt.Sprintf("status %+v pods %v", st, revs)
	}))
}

// unavailability watches web-0..web-(n-1) and keeps the most that were
// unavailable at once: missing, being deleted, or not Running and Ready.
type unavailability struct {
	w      *podWatch
	n      int
	most   int
	mostAt []string
}

func watchUnavailable(t *testing.T, c kubernetes.Interface, n int) *unavailability {
	t.Helper()
	u := &unavailability{n: n}
	u.w = followPods(t, c, "app=web", u.count)
	return u
}

func (u *unavailability) count(pods map[string]*corev1.Pod) {
	var down []string
	for i := range u.n {
		name := fmt.Sprintf("web-%d", i)
		p := pods[name]
		if p == nil || p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning || !podReady(p) {
			down = append(down, name)
		}
	}
	if len(down) > u.most {
		u.most, u.mostAt = len(down), down
	}
}

// result stops the watch and returns the most pods unavailable at once.
func (u *unavailability) result() (int, []string) {
	u.w.close()
	return u.most, slices.Clone(u.mostAt)
}

func TestStatefulSetRollingUpdateReplacesUpToMaxUnavailablePodsAtOnce(t *testing.T) {
	s, c := startAgentServer(t)
	// The controller applies maxUnavailable under either policy; with
	// Parallel the two replaced pods also come back at once, not in order.
	set := webSet(4, appsv1.ParallelPodManagement, `exec sleep 3600`)
	two := intstr.FromInt32(2)
	set.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType,
		RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{MaxUnavailable: &two}}
	createWeb(t, c, set)
	readyWebPods(t, c, 4, 60*time.Second)
	rev1 := settledRevision(t, c, 4, "")

	u := watchUnavailable(t, c, 4)
	s.mustKubectl("patch", "statefulset/web", "-p", envV2)
	settledRevision(t, c, 4, rev1)
	most, at := u.result()
	if most > 2 {
		t.Fatalf("%d pods unavailable at once (%v), maxUnavailable is 2", most, at)
	}
	if most < 2 {
		t.Fatalf("at most %d pod unavailable at once: maxUnavailable 2 not used", most)
	}
	for name, p := range webPods(t, c) {
		if p.Spec.Containers[0].Env[0].Value != "2" {
			t.Errorf("%s has V=%s after the rollout", name, p.Spec.Containers[0].Env[0].Value)
		}
	}
}

func TestStatefulSetWhenScaledDeleteRemovesTheClaimsOfRemovedPods(t *testing.T) {
	s, c := startAgentServer(t)
	set := webSet(3, appsv1.ParallelPodManagement, `exec sleep 3600`)
	// whenDeleted is left to its default, Retain.
	withData(t, c, set, &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
		WhenScaled: appsv1.DeletePersistentVolumeClaimRetentionPolicyType})
	waitDefaultClass(t, c)
	createWeb(t, c, set)
	readyWebPods(t, c, 3, 60*time.Second)
	claims := webClaims(t, c)
	if len(claims) != 3 {
		t.Fatalf("claims %v, want data-web-0..2", slices.Sorted(maps.Keys(claims)))
	}

	s.mustKubectl("scale", "statefulset/web", "--replicas=1")
	eventually(t, 60*time.Second, until("claims of web-1 and web-2 deleted", func() (bool, string) {
		got := webClaims(t, c)
		_, one := got["data-web-1"]
		_, two := got["data-web-2"]
		return !one && !two, fmt.Sprintf("claims %v", slices.Sorted(maps.Keys(got)))
	}))
	if p := webPods(t, c); len(p) != 1 {
		t.Fatalf("pods %v, want web-0 only", slices.Sorted(maps.Keys(p)))
	}
	kept := map[string]corev1.PersistentVolumeClaim{"data-web-0": claims["data-web-0"]}
	claimsKept(t, c, kept, 0)

	s.mustKubectl("delete", "statefulset/web")
	eventually(t, 60*time.Second, until("web-0 deleted with the set", func() (bool, string) {
		_, err := c.CoreV1().Pods("default").Get(context.Background(), "web-0", metav1.GetOptions{})
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	}))
	claimsKept(t, c, kept, 3*time.Second)
}

func TestStatefulSetWhenDeletedDeleteRemovesTheClaimsWithTheSet(t *testing.T) {
	s, c := startAgentServer(t)
	set := webSet(2, appsv1.ParallelPodManagement, `exec sleep 3600`)
	// whenScaled is left to its default, Retain.
	withData(t, c, set, &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
		WhenDeleted: appsv1.DeletePersistentVolumeClaimRetentionPolicyType})
	waitDefaultClass(t, c)
	createWeb(t, c, set)
	readyWebPods(t, c, 2, 60*time.Second)
	claims := webClaims(t, c)
	if len(claims) != 2 {
		t.Fatalf("claims %v, want data-web-0 and data-web-1", slices.Sorted(maps.Keys(claims)))
	}

	s.mustKubectl("scale", "statefulset/web", "--replicas=1")
	eventually(t, 60*time.Second, until("web-1 deleted", func() (bool, string) {
		_, err := c.CoreV1().Pods("default").Get(context.Background(), "web-1", metav1.GetOptions{})
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	}))
	claimsKept(t, c, claims, 3*time.Second)

	s.mustKubectl("delete", "statefulset/web")
	eventually(t, 60*time.Second, until("all claims deleted with the set", func() (bool, string) {
		got := webClaims(t, c)
		return len(got) == 0, fmt.Sprintf("claims %v", slices.Sorted(maps.Keys(got)))
	}))
}

func TestStatefulSetParallelStartsAndStopsPodsWithoutWaitingForReadiness(t *testing.T) {
	s, c := startAgentServer(t)
	// web-0 never becomes ready; OrderedReady would stop there.
	set := webSet(3, appsv1.ParallelPodManagement, `[ "$(hostname)" = web-0 ] || touch /tmp/ready; exec sleep 3600`)
	set.Spec.Template.Spec.Containers[0].ReadinessProbe.Exec.Command = []string{"test", "-e", "/tmp/ready"}
	createWeb(t, c, set)
	var web0 corev1.Pod
	eventually(t, 60*time.Second, until("web-1 and web-2 ready beside an unready web-0", func() (bool, string) {
		pods := webPods(t, c)
		web0 = pods["web-0"]
		w1, w2 := pods["web-1"], pods["web-2"]
		return web0.Status.Phase == corev1.PodRunning && !podReady(&web0) &&
				w1.Status.Phase == corev1.PodRunning && podReady(&w1) && w2.Status.Phase == corev1.PodRunning && podReady(&w2),
			fmt.Sprintf("web-0 %s/%v web-1 %s/%v web-2 %s/%v", web0.Status.Phase, podReady(&web0),
				w1.Status.Phase, podReady(&w1), w2.Status.Phase, podReady(&w2))
	}))
	eventually(t, 30*time.Second, until("status 3 replicas, 2 ready", func() (bool, string) {
		st := getWeb(t, c).Status
		return st.Replicas == 3 && st.ReadyReplicas == 2, fmt.Sprintf("%+v", st)
	}))

	// Scaling down does not wait for web-0 either.
	s.mustKubectl("scale", "statefulset/web", "--replicas=1")
	eventually(t, 60*time.Second, until("web-1 and web-2 deleted", func() (bool, string) {
		pods := webPods(t, c)
		return len(pods) == 1, fmt.Sprintf("pods %v", slices.Sorted(maps.Keys(pods)))
	}))
	p := webPods(t, c)["web-0"]
	if p.UID != web0.UID || podReady(&p) {
		t.Fatalf("web-0: uid %s ready %v, want the same unready pod", p.UID, podReady(&p))
	}
}

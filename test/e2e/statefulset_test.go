package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
)

// webSet is a StatefulSet "web" of replicas busybox pods that log their
// hostname and answer a readiness probe.
func webSet(replicas int32, policy appsv1.PodManagementPolicyType, script string) *appsv1.StatefulSet {
	labels := map[string]string{"app": "web"}
	return &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Labels: labels},
		Spec: appsv1.StatefulSetSpec{
			Replicas: &replicas, ServiceName: "web", PodManagementPolicy: policy,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: new(int64(1)),
					Containers: []corev1.Container{{Name: "main", Image: testImage,
						Command: []string{"sh", "-c", script},
						Env:     []corev1.EnvVar{{Name: "V", Value: "1"}},
						ReadinessProbe: &corev1.Probe{PeriodSeconds: 1, ProbeHandler: corev1.ProbeHandler{
							Exec: &corev1.ExecAction{Command: []string{"true"}}}},
					}},
				},
			},
		},
	}
}

func createWeb(t *testing.T, c kubernetes.Interface, set *appsv1.StatefulSet) *appsv1.StatefulSet {
	t.Helper()
	ctx := context.Background()
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: corev1.ServiceSpec{
		ClusterIP: corev1.ClusterIPNone, Selector: set.Spec.Selector.MatchLabels,
		Ports: []corev1.ServicePort{{Name: "web", Port: 80}}}}
	if _, err := c.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	created, err := c.AppsV1().StatefulSets("default").Create(ctx, set, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.AppsV1().StatefulSets("default").Delete(context.Background(), "web", metav1.DeleteOptions{})
		_ = c.CoreV1().Services("default").Delete(context.Background(), "web", metav1.DeleteOptions{})
	})
	return created
}

// readyWebPods waits until pods web-0..web-(n-1) run and are ready, and
// returns them by name.
func readyWebPods(t *testing.T, c kubernetes.Interface, n int, timeout time.Duration) map[string]corev1.Pod {
	t.Helper()
	var out map[string]corev1.Pod
	eventually(t, timeout, func() error {
		list, err := c.CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			return err
		}
		out = map[string]corev1.Pod{}
		for _, p := range list.Items {
			if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning && podReady(&p) {
				out[p.Name] = p
			}
		}
		for i := range n {
			if _, ok := out[fmt.Sprintf("web-%d", i)]; !ok {
				return errorf("web-%d not running and ready; have %d", i, len(out))
			}
		}
		return nil
	})
	return out
}

func TestStatefulSetOrderedReadyStartsInOrderWithStableHostnames(t *testing.T) {
	s, c := startAgentServer(t)
	ctx := context.Background()

	// Watch from before the set exists: when each pod appears and when it
	// becomes ready.
	w, err := c.CoreV1().Pods("default").Watch(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	var mu sync.Mutex
	var log []string // "added web-1", "ready web-0", "deleting web-2"
	seen := map[string]bool{}
	go func() {
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			mu.Lock()
			note := func(what string) {
				if k := what + " " + p.Name; !seen[k] {
					seen[k] = true
					log = append(log, k)
				}
			}
			if ev.Type == watch.Added {
				note("added")
			}
			if p.Status.Phase == corev1.PodRunning && podReady(p) {
				note("ready")
			}
			if p.DeletionTimestamp != nil || ev.Type == watch.Deleted {
				note("deleting")
			}
			mu.Unlock()
		}
	}()
	at := func(k string) int {
		mu.Lock()
		defer mu.Unlock()
		for i, l := range log {
			if l == k {
				return i
			}
		}
		return -1
	}

	createWeb(t, c, webSet(3, appsv1.OrderedReadyPodManagement, `echo host=$(hostname); exec sleep 3600`))
	pods := readyWebPods(t, c, 3, 90*time.Second)
	for i := 1; i < 3; i++ {
		prevReady, added := at(fmt.Sprintf("ready web-%d", i-1)), at(fmt.Sprintf("added web-%d", i))
		if prevReady < 0 || added < prevReady {
			mu.Lock()
			t.Fatalf("web-%d was created before web-%d was Running and Ready: %v", i, i-1, log)
		}
	}
	for name, p := range pods {
		if p.Spec.Hostname != name || p.Spec.Subdomain != "web" {
			t.Errorf("%s: hostname %q subdomain %q", name, p.Spec.Hostname, p.Spec.Subdomain)
		}
		if p.Labels["statefulset.kubernetes.io/pod-name"] != name || p.Labels["controller-revision-hash"] == "" ||
			p.Labels["apps.kubernetes.io/pod-index"] != strings.TrimPrefix(name, "web-") {
			t.Errorf("%s: labels %v", name, p.Labels)
		}
		if out := s.mustKubectl("logs", name); !strings.Contains(out, "host="+name) {
			t.Errorf("%s logs %q, want its own hostname", name, out)
		}
	}
	eventually(t, 30*time.Second, until("SuccessfulCreate event", func() (bool, string) {
		list, _ := c.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=web"})
		var msgs []string
		for _, e := range list.Items {
			msgs = append(msgs, e.Message)
			if e.Reason == "SuccessfulCreate" && e.Message == "create Pod web-0 in StatefulSet web successful" {
				return true, ""
			}
		}
		return false, strings.Join(msgs, "; ")
	}))

	s.mustKubectl("scale", "statefulset/web", "--replicas=2")
	eventually(t, 60*time.Second, until("web-2 deleted", func() (bool, string) {
		return at("deleting web-2") >= 0, ""
	}))
	time.Sleep(3 * time.Second)
	if at("deleting web-1") >= 0 || at("deleting web-0") >= 0 {
		mu.Lock()
		t.Fatalf("scale down to 2 deleted more than web-2: %v", log)
	}
	eventually(t, 60*time.Second, until("status replicas 2", func() (bool, string) {
		set, err := c.AppsV1().StatefulSets("default").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return set.Status.Replicas == 2 && set.Status.ReadyReplicas == 2, fmt.Sprintf("%+v", set.Status)
	}))
}

func TestStatefulSetPodKeepsItsClaimWhenRecreated(t *testing.T) {
	s, c := startAgentServer(t)
	ctx := context.Background()
	set := webSet(2, appsv1.OrderedReadyPodManagement,
		`if [ -f /data/f ]; then echo found $(cat /data/f); else echo $(hostname)-data > /data/f; echo wrote; fi; exec sleep 3600`)
	set.Spec.Template.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "www", MountPath: "/data"}}
	set.Spec.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "www"},
		Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("10Mi")}}}}}
	waitDefaultClass(t, c)
	createWeb(t, c, set)
	t.Cleanup(func() {
		for _, n := range []string{"www-web-0", "www-web-1"} {
			_ = c.CoreV1().PersistentVolumeClaims("default").Delete(context.Background(), n, metav1.DeleteOptions{})
		}
	})
	first := readyWebPods(t, c, 2, 90*time.Second)["web-1"]
	if out := s.mustKubectl("logs", "web-1"); !strings.Contains(out, "wrote") {
		t.Fatalf("web-1 first run logs %q, want it to write", out)
	}
	claim, err := c.CoreV1().PersistentVolumeClaims("default").Get(ctx, "www-web-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if claim.Spec.VolumeName == "" || claim.Labels["app"] != "web" {
		t.Fatalf("claim www-web-1: volume %q labels %v", claim.Spec.VolumeName, claim.Labels)
	}

	if err := c.CoreV1().Pods("default").Delete(ctx, "web-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	var second corev1.Pod
	eventually(t, 90*time.Second, func() error {
		p, err := c.CoreV1().Pods("default").Get(ctx, "web-1", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if p.UID == first.UID || !podReady(p) {
			return errorf("web-1 not yet replaced and ready")
		}
		second = *p
		return nil
	})
	if out := s.mustKubectl("logs", "web-1"); !strings.Contains(out, "found web-1-data") {
		t.Fatalf("new web-1 logs %q, want it to read the file the old one wrote", out)
	}
	var claims []string
	for _, v := range second.Spec.Volumes {
		if v.PersistentVolumeClaim != nil {
			claims = append(claims, v.PersistentVolumeClaim.ClaimName)
		}
	}
	if len(claims) != 1 || claims[0] != "www-web-1" {
		t.Fatalf("new web-1 claims %v, want [www-web-1]", claims)
	}
	again, err := c.CoreV1().PersistentVolumeClaims("default").Get(ctx, "www-web-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if again.UID != claim.UID || again.Spec.VolumeName != claim.Spec.VolumeName {
		t.Fatalf("claim changed: %s/%s, was %s/%s", again.UID, again.Spec.VolumeName, claim.UID, claim.Spec.VolumeName)
	}
}

// revisionOfPods is each web pod's controller-revision-hash.
func revisionOfPods(t *testing.T, c kubernetes.Interface) map[string]string {
	t.Helper()
	list, err := c.CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil && podReady(&p) {
			out[p.Name] = p.Labels["controller-revision-hash"]
		}
	}
	return out
}

func TestStatefulSetPartitionedRollingUpdateAndUndo(t *testing.T) {
	s, c := startAgentServer(t)
	ctx := context.Background()
	set := createWeb(t, c, webSet(3, appsv1.ParallelPodManagement, `exec sleep 3600`))
	readyWebPods(t, c, 3, 90*time.Second)
	var rev1 string
	eventually(t, 30*time.Second, until("all pods at the first revision", func() (bool, string) {
		got, _ := c.AppsV1().StatefulSets("default").Get(ctx, "web", metav1.GetOptions{})
		revs := revisionOfPods(t, c)
		rev1 = got.Status.UpdateRevision
		return rev1 != "" && got.Status.CurrentRevision == rev1 && revs["web-0"] == rev1 && revs["web-1"] == rev1 && revs["web-2"] == rev1,
			fmt.Sprintf("status %+v pods %v", got.Status, revs)
	}))

	s.mustKubectl("patch", "statefulset/web", "-p",
		`{"spec":{"updateStrategy":{"rollingUpdate":{"partition":1}},"template":{"spec":{"containers":[{"name":"main","env":[{"name":"V","value":"2"}]}]}}}}`)
	var rev2 string
	eventually(t, 90*time.Second, until("ordinals 1 and 2 updated, 0 kept", func() (bool, string) {
		got, _ := c.AppsV1().StatefulSets("default").Get(ctx, "web", metav1.GetOptions{})
		revs := revisionOfPods(t, c)
		rev2 = got.Status.UpdateRevision
		return rev2 != rev1 && revs["web-0"] == rev1 && revs["web-1"] == rev2 && revs["web-2"] == rev2 &&
				got.Status.CurrentRevision == rev1 && got.Status.UpdatedReplicas == 2 && got.Status.ReadyReplicas == 3,
			fmt.Sprintf("status %+v pods %v", got.Status, revs)
	}))
	p0, err := c.CoreV1().Pods("default").Get(ctx, "web-0", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if v := p0.Spec.Containers[0].Env[0].Value; v != "1" {
		t.Fatalf("web-0 below the partition has V=%s, want the old template", v)
	}

	s.mustKubectl("rollout", "undo", "statefulset/web")
	eventually(t, 90*time.Second, until("template and pods back to the first revision", func() (bool, string) {
		got, _ := c.AppsV1().StatefulSets("default").Get(ctx, "web", metav1.GetOptions{})
		revs := revisionOfPods(t, c)
		return got.Spec.Template.Spec.Containers[0].Env[0].Value == "1" && got.Status.UpdateRevision == rev1 &&
				got.Status.CurrentRevision == rev1 && revs["web-1"] == rev1 && revs["web-2"] == rev1 && len(revs) == 3,
			fmt.Sprintf("status %+v pods %v", got.Status, revs)
	}))
	if out := s.mustKubectl("rollout", "status", "statefulset/web", "--timeout=60s"); !strings.Contains(out, "complete") {
		t.Errorf("rollout status: %q", out)
	}

	out := s.mustKubectl("get", "controllerrevisions", "-l", "app=web", "-o", "json")
	var list appsv1.ControllerRevisionList
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatal(err)
	}
	numbers := map[string]int64{}
	for _, r := range list.Items {
		numbers[r.Name] = r.Revision
		ref := metav1.GetControllerOf(&r)
		if ref == nil || ref.UID != set.UID || ref.Kind != "StatefulSet" || ref.Name != "web" {
			t.Errorf("revision %s: controller %+v, want the set", r.Name, ref)
		}
	}
	// The undone-to template is the newest revision again.
	if len(numbers) != 2 || numbers[rev2] != 2 || numbers[rev1] != 3 {
		t.Fatalf("revisions %v, want %s=2 and %s=3", numbers, rev2, rev1)
	}
	if h := s.mustKubectl("rollout", "history", "statefulset/web"); !strings.Contains(h, "2 ") || !strings.Contains(h, "3 ") {
		t.Errorf("rollout history:\n%s", h)
	}

	// Undo to a named revision: revision 2's template comes back as
	// revision 4, again only from the partition up.
	s.mustKubectl("rollout", "undo", "statefulset/web", "--to-revision=2")
	eventually(t, 90*time.Second, until("revision 2's template back on ordinals 1 and 2", func() (bool, string) {
		got, _ := c.AppsV1().StatefulSets("default").Get(ctx, "web", metav1.GetOptions{})
		revs := revisionOfPods(t, c)
		return got.Spec.Template.Spec.Containers[0].Env[0].Value == "2" && got.Status.UpdateRevision == rev2 &&
				revs["web-0"] == rev1 && revs["web-1"] == rev2 && revs["web-2"] == rev2 && got.Status.ReadyReplicas == 3,
			fmt.Sprintf("status %+v pods %v", got.Status, revs)
	}))
	r, err := c.AppsV1().ControllerRevisions("default").Get(ctx, rev2, metav1.GetOptions{})
	if err != nil || r.Revision != 4 {
		t.Errorf("revision %s after undo --to-revision=2: %v, %v; want number 4", rev2, r, err)
	}
}

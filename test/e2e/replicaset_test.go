package e2e

import (
	"context"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// rsTemplateLabels are the labels of every test ReplicaSet's pods; its
// selector is app=<name>.
func rsTemplateLabels(name string) map[string]string {
	return map[string]string{"app": name, "tier": "e2e"}
}

// rsPodSpec is a cheap pod that goes quickly when deleted.
func rsPodSpec() corev1.PodSpec {
	grace := int64(1)
	return corev1.PodSpec{TerminationGracePeriodSeconds: &grace,
		Containers: []corev1.Container{{Name: "main", Image: testImage, Command: []string{"sleep", "3600"}}}}
}

// rsCreate makes a ReplicaSet of replicas pods in default, and
// deletes it (and, through the garbage collector, its pods) afterwards.
func rsCreate(t *testing.T, c kubernetes.Interface, name string, replicas int32, edits ...func(*appsv1.ReplicaSet)) *appsv1.ReplicaSet {
	t.Helper()
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: rsTemplateLabels(name)}, Spec: rsPodSpec()},
		},
	}
	for _, e := range edits {
		e(rs)
	}
	rs, err := c.AppsV1().ReplicaSets("default").Create(context.Background(), rs, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.AppsV1().ReplicaSets("default").Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	return rs
}

// rsOwnedPods lists the pods the ReplicaSet controls that are neither
// being deleted nor finished: its replicas.
func rsOwnedPods(c kubernetes.Interface, rs *appsv1.ReplicaSet) ([]corev1.Pod, error) {
	list, err := c.CoreV1().Pods(rs.Namespace).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	var out []corev1.Pod
	for _, p := range list.Items {
		finished := p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
		if p.DeletionTimestamp == nil && !finished && metav1.IsControlledBy(&p, rs) {
			out = append(out, p)
		}
	}
	return out, nil
}

func rsPodNames(pods []corev1.Pod) []string {
	var names []string
	for _, p := range pods {
		names = append(names, p.Name)
	}
	slices.Sort(names)
	return names
}

// rsWaitReplicas waits until the ReplicaSet has exactly n pods, all Running
// and ready, and its status says so for the current generation.
func rsWaitReplicas(t *testing.T, c kubernetes.Interface, rs *appsv1.ReplicaSet, n int32, timeout time.Duration) []corev1.Pod {
	t.Helper()
	var pods []corev1.Pod
	eventually(t, timeout, func() error {
		var err error
		if pods, err = rsOwnedPods(c, rs); err != nil {
			return err
		}
		if int32(len(pods)) != n {
			return fmt.Errorf("%d pods %v, want %d", len(pods), rsPodNames(pods), n)
		}
		for _, p := range pods {
			if p.Status.Phase != corev1.PodRunning || !podReady(&p) {
				return fmt.Errorf("pod %s is %s, ready %v", p.Name, p.Status.Phase, podReady(&p))
			}
		}
		cur, err := c.AppsV1().ReplicaSets(rs.Namespace).Get(context.Background(), rs.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		st := cur.Status
		if st.ObservedGeneration != cur.Generation || st.Replicas != n || st.ReadyReplicas != n || st.AvailableReplicas != n || st.FullyLabeledReplicas != n {
			return fmt.Errorf("generation %d, status %+v, want %d replicas ready and available", cur.Generation, st, n)
		}
		return nil
	})
	return pods
}

func rsScale(t *testing.T, c kubernetes.Interface, name string, n int32) {
	t.Helper()
	patch := fmt.Sprintf(`{"spec":{"replicas":%d}}`, n)
	if _, err := c.AppsV1().ReplicaSets("default").Patch(context.Background(), name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}

// rsEvents lists the ReplicaSet's events with the reason, by message.
func rsEvents(c kubernetes.Interface, rs *appsv1.ReplicaSet, reason string) ([]string, error) {
	list, err := c.CoreV1().Events(rs.Namespace).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range list.Items {
		if e.InvolvedObject.Kind == "ReplicaSet" && e.InvolvedObject.UID == rs.UID && e.Reason == reason {
			if e.Source.Component != "replicaset-controller" {
				return nil, fmt.Errorf("event %s from %q, want replicaset-controller", e.Message, e.Source.Component)
			}
			out = append(out, e.Message)
		}
	}
	return out, nil
}

func TestReplicaSetRunsItsReplicasAndScalesUpAndDown(t *testing.T) {
	s, c := startAgentServer(t)
	rs := rsCreate(t, c, "scaled", 3)
	pods := rsWaitReplicas(t, c, rs, 3, 90*time.Second)

	name := regexp.MustCompile(`^scaled-[a-z0-9]{5}$`)
	for _, p := range pods {
		if !name.MatchString(p.Name) || p.GenerateName != "scaled-" {
			t.Errorf("pod name %q (generateName %q), want scaled-<5 characters>", p.Name, p.GenerateName)
		}
		want := metav1.OwnerReference{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "scaled", UID: rs.UID, Controller: ptr(true), BlockOwnerDeletion: ptr(true)}
		if len(p.OwnerReferences) != 1 || !reflect.DeepEqual(p.OwnerReferences[0], want) {
			t.Errorf("pod %s ownerReferences = %+v, want %+v", p.Name, p.OwnerReferences, want)
		}
		if p.Labels["tier"] != "e2e" || p.Spec.NodeName != "e2e-node" {
			t.Errorf("pod %s: labels %v, node %q", p.Name, p.Labels, p.Spec.NodeName)
		}
	}
	eventually(t, 20*time.Second, func() error {
		msgs, err := rsEvents(c, rs, "SuccessfulCreate")
		if err != nil {
			return err
		}
		for _, p := range pods {
			if !slices.Contains(msgs, "Created pod: "+p.Name) {
				return fmt.Errorf("no SuccessfulCreate for %s in %q", p.Name, msgs)
			}
		}
		return nil
	})

	rsScale(t, c, "scaled", 10)
	rsWaitReplicas(t, c, rs, 10, 120*time.Second)
	// Had a sync acted on a stale pod list, it would have made too many
	// pods and deleted the surplus.
	time.Sleep(2 * time.Second)
	if msgs, err := rsEvents(c, rs, "SuccessfulDelete"); err != nil || len(msgs) != 0 {
		t.Fatalf("pods deleted while scaling up: %q (err %v)", msgs, err)
	}

	rsScale(t, c, "scaled", 2)
	kept := rsWaitReplicas(t, c, rs, 2, 90*time.Second)
	eventually(t, 20*time.Second, func() error {
		msgs, err := rsEvents(c, rs, "SuccessfulDelete")
		if err != nil {
			return err
		}
		if len(msgs) != 8 {
			return fmt.Errorf("SuccessfulDelete events %q, want 8", msgs)
		}
		for _, p := range kept {
			if slices.Contains(msgs, "Deleted pod: "+p.Name) {
				return fmt.Errorf("kept pod %s has a SuccessfulDelete event", p.Name)
			}
		}
		return nil
	})
	// Nothing more happens once converged.
	time.Sleep(2 * time.Second)
	if now, err := rsOwnedPods(c, rs); err != nil || !slices.Equal(rsPodNames(now), rsPodNames(kept)) {
		t.Errorf("pods changed after converging: %v, were %v (err %v)", rsPodNames(now), rsPodNames(kept), err)
	}
	cur, err := c.AppsV1().ReplicaSets("default").Get(context.Background(), "scaled", metav1.GetOptions{})
	if err != nil || cur.Status.ObservedGeneration != cur.Generation || cur.Generation < 3 {
		t.Errorf("after two scalings: generation %d, observed %d (err %v)", cur.Generation, cur.Status.ObservedGeneration, err)
	}
	out := s.mustKubectl("get", "rs", "scaled", "--no-headers")
	if cols := strings.Fields(out); len(cols) < 4 || cols[1] != "2" || cols[2] != "2" || cols[3] != "2" {
		t.Errorf("kubectl get rs: %q, want 2 desired, current and ready", out)
	}
}

func TestReplicaSetReplacesDeletedPodsAndReleasesRelabeledOnes(t *testing.T) {
	_, c := startAgentServer(t)
	ctx := context.Background()
	rs := rsCreate(t, c, "healing", 3)
	pods := rsWaitReplicas(t, c, rs, 3, 90*time.Second)

	// A deleted pod is replaced.
	gone := pods[0].Name
	if err := c.CoreV1().Pods("default").Delete(ctx, gone, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	pods = rsWaitReplicas(t, c, rs, 3, 90*time.Second)
	if slices.Contains(rsPodNames(pods), gone) {
		t.Fatalf("deleted pod %s still counted: %v", gone, rsPodNames(pods))
	}

	// A pod relabeled out of the selector is released, not deleted, and
	// replaced.
	moved := pods[0].Name
	patch := `{"metadata":{"labels":{"app":"elsewhere"}}}`
	if _, err := c.CoreV1().Pods("default").Patch(ctx, moved, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CoreV1().Pods("default").Delete(context.Background(), moved, metav1.DeleteOptions{}) })
	eventually(t, 30*time.Second, func() error {
		p, err := c.CoreV1().Pods("default").Get(ctx, moved, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if len(p.OwnerReferences) != 0 || p.DeletionTimestamp != nil {
			return fmt.Errorf("relabeled pod: ownerReferences %+v, deletionTimestamp %v", p.OwnerReferences, p.DeletionTimestamp)
		}
		return nil
	})
	pods = rsWaitReplicas(t, c, rs, 3, 90*time.Second)
	if slices.Contains(rsPodNames(pods), moved) {
		t.Errorf("released pod %s still counted: %v", moved, rsPodNames(pods))
	}
	if p, err := c.CoreV1().Pods("default").Get(ctx, moved, metav1.GetOptions{}); err != nil || p.Status.Phase != corev1.PodRunning {
		t.Errorf("released pod should keep running: %v %v", p.Status.Phase, err)
	}
}

// A failed pod no longer counts: the ReplicaSet makes another and, as in
// Kubernetes, leaves the failed one for the user or the pod garbage
// collector (kubectl get pods shows it, e.g. Evicted or DeadlineExceeded).
func TestReplicaSetReplacesFailedPodsAndKeepsThem(t *testing.T) {
	_, c := startAgentServer(t)
	ctx := context.Background()
	// A ReplicaSet's template may not set activeDeadlineSeconds, so the
	// pod that fails is an orphan it adopts: past its deadline the node
	// agent fails it for good.
	doomed := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "doomed", Labels: rsTemplateLabels("failing")}, Spec: rsPodSpec()}
	doomed.Spec.ActiveDeadlineSeconds = ptr(int64(4))
	createPod(t, c, doomed)
	rs := rsCreate(t, c, "failing", 1)
	pods := rsWaitReplicas(t, c, rs, 1, 60*time.Second)
	if pods[0].Name != "doomed" {
		t.Fatalf("pods %v, want the adopted doomed", rsPodNames(pods))
	}
	waitPod(t, c, "default", "doomed", 60*time.Second, "Failed", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
	pods = rsWaitReplicas(t, c, rs, 1, 60*time.Second)
	if pods[0].Name == "doomed" {
		t.Errorf("failed pod not replaced")
	}
	got, err := c.AppsV1().ReplicaSets("default").Get(ctx, "failing", metav1.GetOptions{})
	if err != nil || got.Status.Replicas != 1 {
		t.Errorf("replicaset status %+v, %v; want 1 replica, the failed pod not counted", got.Status, err)
	}
	p, err := c.CoreV1().Pods("default").Get(ctx, "doomed", metav1.GetOptions{})
	if err != nil || p.Status.Phase != corev1.PodFailed || p.DeletionTimestamp != nil || !metav1.IsControlledBy(p, got) {
		t.Errorf("failed pod: %v %v; want it kept, Failed and still the ReplicaSet's", p, err)
	}
}

func TestReplicaSetAdoptsAMatchingOrphan(t *testing.T) {
	_, c := startAgentServer(t)
	ctx := context.Background()
	orphan := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "orphan", Labels: rsTemplateLabels("adopter")}, Spec: rsPodSpec()}
	createPod(t, c, orphan)
	waitPod(t, c, "default", "orphan", 60*time.Second, "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })

	rs := rsCreate(t, c, "adopter", 3)
	pods := rsWaitReplicas(t, c, rs, 3, 90*time.Second)
	if !slices.Contains(rsPodNames(pods), "orphan") {
		t.Fatalf("orphan not adopted: the ReplicaSet's pods are %v", rsPodNames(pods))
	}
	eventually(t, 20*time.Second, func() error {
		msgs, err := rsEvents(c, rs, "SuccessfulCreate")
		if err != nil {
			return err
		}
		if len(msgs) != 2 {
			return fmt.Errorf("SuccessfulCreate events %q, want 2: the orphan makes the third", msgs)
		}
		return nil
	})
	p, err := c.CoreV1().Pods("default").Get(ctx, "orphan", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ref := metav1.GetControllerOf(p); ref == nil || ref.UID != rs.UID || ref.BlockOwnerDeletion == nil || !*ref.BlockOwnerDeletion {
		t.Errorf("adopted pod's controller = %+v", ref)
	}
	// The ReplicaSet goes, and with it its pods, the adopted one included.
	if err := c.AppsV1().ReplicaSets("default").Delete(ctx, "adopter", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, func() error {
		list, err := c.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=adopter"})
		if err != nil {
			return err
		}
		if len(list.Items) != 0 {
			var names []string
			for _, p := range list.Items {
				names = append(names, p.Name)
			}
			return fmt.Errorf("pods left: %s", strings.Join(names, " "))
		}
		return nil
	})
}

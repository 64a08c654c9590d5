package e2e

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
)

const dsName = "fluentd-elasticsearch"

// dsPods are the DaemonSet's pods not being deleted, by node.
func dsPods(t *testing.T, c kubernetes.Interface) map[string]corev1.Pod {
	t.Helper()
	list, err := c.CoreV1().Pods("kube-system").List(context.Background(), metav1.ListOptions{LabelSelector: "name=" + dsName})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]corev1.Pod{}
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil {
			out[p.Spec.NodeName] = p
		}
	}
	return out
}

// until adapts a check that says what it saw to eventually.
func until(what string, check func() (bool, string)) func() error {
	return func() error {
		if ok, saw := check(); !ok {
			return fmt.Errorf("%s; last: %s", what, saw)
		}
		return nil
	}
}

func dsHistory(s *server) []string {
	s.t.Helper()
	out := s.mustKubectl("rollout", "history", "daemonset/"+dsName, "-n", "kube-system")
	var revs []string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 && regexp.MustCompile(`^\d+$`).MatchString(f[0]) {
			revs = append(revs, f[0])
		}
	}
	return revs
}

func TestDaemonSetRunsOnEveryNodeRollsOutAndBack(t *testing.T) {
	s, c := startAgentServer(t)
	ctx := context.Background()

	// A second node, no agent behind it, tainted for logging only.
	addNode(t, c, "logging-node", "4", nil)
	updateNode(t, c, "logging-node", func(n *corev1.Node) {
		n.Spec.Taints = []corev1.Taint{{Key: "dedicated", Value: "logging", Effect: corev1.TaintEffectNoSchedule}}
	})

	labels := map[string]string{"name": dsName}
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: dsName, Namespace: "kube-system", Labels: labels},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			// The logging node has no agent: its pod is never available and
			// counts against maxUnavailable, so with the default 1 a
			// rollout would stop there, as in Kubernetes.
			UpdateStrategy: appsv1.DaemonSetUpdateStrategy{Type: appsv1.RollingUpdateDaemonSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxUnavailable: new(intstr.FromInt32(2))}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					Tolerations:                   []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "logging", Effect: corev1.TaintEffectNoSchedule}},
					TerminationGracePeriodSeconds: new(int64(1)),
					Containers:                    []corev1.Container{{Name: dsName, Image: testImage, Command: []string{"sh", "-c", "sleep 3600"}}},
				},
			},
		},
	}
	if _, err := c.AppsV1().DaemonSets("kube-system").Create(ctx, ds, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.AppsV1().DaemonSets("kube-system").Delete(context.Background(), dsName, metav1.DeleteOptions{})
	})

	// One pod per node: running on e2e-node, bound on the agentless one.
	eventually(t, 60*time.Second, until("a pod on each node", func() (bool, string) {
		pods := dsPods(t, c)
		e2e, logging := pods["e2e-node"], pods["logging-node"]
		return len(pods) == 2 && e2e.Status.Phase == corev1.PodRunning && logging.Name != "", fmt.Sprint(pods)
	}))
	for node, p := range dsPods(t, c) {
		if p.Labels["controller-revision-hash"] == "" || p.Labels["pod-template-generation"] == "" {
			t.Errorf("pod on %s labels %v", node, p.Labels)
		}
		terms := p.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
		if len(terms) != 1 || len(terms[0].MatchFields) != 1 || terms[0].MatchFields[0].Values[0] != node {
			t.Errorf("pod on %s affinity %+v", node, terms)
		}
	}
	eventually(t, 30*time.Second, until("status", func() (bool, string) {
		d, err := c.AppsV1().DaemonSets("kube-system").Get(ctx, dsName, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		st := d.Status
		return st.DesiredNumberScheduled == 2 && st.CurrentNumberScheduled == 2 && st.UpdatedNumberScheduled == 2 &&
			st.NumberReady == 1 && st.NumberAvailable == 1 && st.NumberUnavailable == 1 && st.NumberMisscheduled == 0 &&
			st.ObservedGeneration == d.Generation, fmt.Sprintf("%+v", st)
	}))
	firstHash := dsPods(t, c)["e2e-node"].Labels["controller-revision-hash"]

	// A new image makes a second revision and rolls the pods.
	s.mustKubectl("set", "image", "daemonset/"+dsName, dsName+"=skiff.test/busybox:missing", "-n", "kube-system")
	eventually(t, 30*time.Second, until("two revisions", func() (bool, string) {
		out := s.mustKubectl("get", "controllerrevision", "-n", "kube-system", "-l", "name="+dsName, "-o", "name")
		return len(strings.Fields(out)) == 2, out
	}))
	if revs := dsHistory(s); !slices.Equal(revs, []string{"1", "2"}) {
		t.Errorf("rollout history: %v", revs)
	}
	eventually(t, 30*time.Second, until("the e2e-node pod replaced", func() (bool, string) {
		p := dsPods(t, c)["e2e-node"]
		return p.Name != "" && p.Spec.Containers[0].Image == "skiff.test/busybox:missing" && p.Labels["pod-template-generation"] == "2",
			fmt.Sprint(p.Name, p.Labels)
	}))
	// The server numbers the templates, as kube-apiserver does.
	if d, err := c.AppsV1().DaemonSets("kube-system").Get(ctx, dsName, metav1.GetOptions{}); err != nil ||
		d.Annotations["deprecated.daemonset.template.generation"] != "2" {
		t.Errorf("template generation after one change: %v, %v", d.Annotations, err)
	}

	// Undo brings the first template back, as revision 3.
	s.mustKubectl("rollout", "undo", "daemonset/"+dsName, "-n", "kube-system")
	d, err := c.AppsV1().DaemonSets("kube-system").Get(ctx, dsName, metav1.GetOptions{})
	if err != nil || d.Spec.Template.Spec.Containers[0].Image != testImage {
		t.Fatalf("after undo: %v %v", d.Spec.Template.Spec.Containers, err)
	}
	eventually(t, 60*time.Second, until("the first template running again", func() (bool, string) {
		p := dsPods(t, c)["e2e-node"]
		return p.Labels["controller-revision-hash"] == firstHash && p.Status.Phase == corev1.PodRunning, p.Name + " " + string(p.Status.Phase)
	}))
	eventually(t, 30*time.Second, until("revisions 2 and 3", func() (bool, string) {
		revs := dsHistory(s)
		return slices.Equal(revs, []string{"2", "3"}), fmt.Sprint(revs)
	}))

	// A node that joins gets a pod, scheduled there.
	addNode(t, c, "late-node", "4", nil)
	eventually(t, 30*time.Second, until("a pod on the node that joined", func() (bool, string) {
		pods := dsPods(t, c)
		return pods["late-node"].Name != "", fmt.Sprint(slices.Collect(maps.Keys(pods)))
	}))

	// Nodes deleted lose their pods (the pod garbage collector takes pods
	// bound to a missing node); then the rollout is complete.
	for _, n := range []string{"logging-node", "late-node"} {
		if err := c.CoreV1().Nodes().Delete(ctx, n, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 120*time.Second, until("the deleted nodes' pods gone", func() (bool, string) {
		list, err := c.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "name=" + dsName})
		if err != nil {
			return false, err.Error()
		}
		for _, p := range list.Items {
			if p.Spec.NodeName != "e2e-node" {
				return false, p.Name + " on " + p.Spec.NodeName
			}
		}
		return true, ""
	}))
	out := s.mustKubectl("rollout", "status", "daemonset/"+dsName, "-n", "kube-system", "--timeout=60s")
	if !strings.Contains(out, "successfully rolled out") {
		t.Errorf("rollout status: %s", out)
	}

	evs, err := c.CoreV1().Events("kube-system").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.kind=DaemonSet,involvedObject.name=" + dsName})
	if err != nil {
		t.Fatal(err)
	}
	var created bool
	for _, e := range evs.Items {
		if e.Reason == "SuccessfulCreate" && strings.HasPrefix(e.Message, "Created pod: "+dsName+"-") && e.Source.Component == "daemonset-controller" {
			created = true
		}
	}
	if !created {
		t.Errorf("no SuccessfulCreate event: %v", evs.Items)
	}
}

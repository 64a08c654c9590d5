package e2e

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
)

// addNode registers a Node with no agent behind it, Ready, of the given
// size: enough for the scheduler to place pods on.
func addNode(t *testing.T, c kubernetes.Interface, name string, cpu string, labels map[string]string) {
	t.Helper()
	ctx := context.Background()
	node, err := c.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	capacity := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse("64Gi"),
		corev1.ResourcePods: resource.MustParse("110")}
	status := corev1.NodeStatus{Capacity: capacity, Allocatable: capacity,
		Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", LastHeartbeatTime: metav1.Now()}}}
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		node.Status = status
		_, err := c.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{})
		if err != nil {
			node, _ = c.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

// updateNode changes a node, again on a fresh copy when the server changed
// it meanwhile (it gives each new node its pod range).
func updateNode(t *testing.T, c kubernetes.Interface, name string, change func(*corev1.Node)) {
	t.Helper()
	ctx := context.Background()
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		n, err := c.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		change(n)
		_, err = c.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{})
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

func scheduledCondition(p *corev1.Pod) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == corev1.PodScheduled {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

func TestSchedulerPlacesPodsAndSaysWhyNot(t *testing.T) {
	_, c := startAgentServer(t)
	ctx := context.Background()
	create := func(p *corev1.Pod) {
		t.Helper()
		if _, err := c.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// No nodeName: the scheduler places it on the only node, whose agent runs it.
	create(shPod("placed", "sleep 3600", corev1.RestartPolicyAlways))
	p := waitPod(t, c, "default", "placed", 30*time.Second, "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	if p.Spec.NodeName != "e2e-node" {
		t.Errorf("placed on %q", p.Spec.NodeName)
	}
	// The node reports its images, for the scheduler's image locality.
	node, err := c.CoreV1().Nodes().Get(ctx, "e2e-node", metav1.GetOptions{})
	if err != nil || len(node.Status.Images) == 0 || !slices.Contains(node.Status.Images[0].Names, testImage) {
		t.Errorf("node images: %+v %v", node.Status.Images, err)
	}
	if cond := scheduledCondition(p); cond == nil || cond.Status != corev1.ConditionTrue {
		t.Errorf("PodScheduled: %+v", cond)
	}
	// The scheduler leads through its Lease, as kube-scheduler does.
	lease, err := c.CoordinationV1().Leases("kube-system").Get(ctx, "kube-scheduler", metav1.GetOptions{})
	if err != nil || lease.Spec.HolderIdentity == nil || !strings.HasPrefix(*lease.Spec.HolderIdentity, "e2e-node_") {
		t.Errorf("kube-scheduler lease: %v %v", lease, err)
	}

	// 100 CPUs fit nowhere: Unschedulable, in kube-scheduler's words.
	huge := shPod("huge", "true", corev1.RestartPolicyNever)
	huge.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100")}
	create(huge)
	p = waitPod(t, c, "default", "huge", 30*time.Second, "Unschedulable", func(p *corev1.Pod) bool {
		cond := scheduledCondition(p)
		return cond != nil && cond.Status == corev1.ConditionFalse
	})
	cond := scheduledCondition(p)
	if cond.Reason != "Unschedulable" || cond.Message != "0/1 nodes are available: 1 Insufficient cpu." {
		t.Errorf("PodScheduled = %s %q", cond.Reason, cond.Message)
	}
	eventually(t, 10*time.Second, func() error {
		list, _ := c.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=huge"})
		for _, e := range list.Items {
			if e.Reason == "FailedScheduling" && e.Message == cond.Message && e.Source.Component == "default-scheduler" {
				return nil
			}
		}
		return errorf("no FailedScheduling event: %+v", list.Items)
	})

	// A node selector that matches nothing yet, then a node that has room
	// and the label: both pods land there.
	picky := shPod("picky", "true", corev1.RestartPolicyNever)
	picky.Spec.NodeSelector = map[string]string{"disk": "ssd"}
	create(picky)
	waitPod(t, c, "default", "picky", 30*time.Second, "Unschedulable", func(p *corev1.Pod) bool {
		cond := scheduledCondition(p)
		return cond != nil && cond.Message == "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector."
	})
	addNode(t, c, "big", "200", map[string]string{"disk": "ssd"})
	for _, name := range []string{"huge", "picky"} {
		p = waitPod(t, c, "default", name, 30*time.Second, "bound to the new node", func(p *corev1.Pod) bool { return p.Spec.NodeName == "big" })
	}

	// Taints keep pods off a node unless they tolerate them.
	tainted := "dedicated"
	// (The server gives the node its pod range meanwhile: retry on conflicts.)
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		node, err := c.CoreV1().Nodes().Get(ctx, "big", metav1.GetOptions{})
		if err != nil {
			return err
		}
		node.Spec.Taints = []corev1.Taint{{Key: tainted, Value: "gpu", Effect: corev1.TaintEffectNoSchedule}}
		_, err = c.CoreV1().Nodes().Update(ctx, node, metav1.UpdateOptions{})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	big := shPod("big-again", "true", corev1.RestartPolicyNever)
	big.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("50")}
	create(big)
	waitPod(t, c, "default", "big-again", 30*time.Second, "Unschedulable", func(p *corev1.Pod) bool {
		cond := scheduledCondition(p)
		return cond != nil && cond.Message == "0/2 nodes are available: 1 Insufficient cpu, 1 node(s) had untolerated taint {dedicated: gpu}."
	})
	tolerant := shPod("tolerant", "true", corev1.RestartPolicyNever)
	tolerant.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("50")}
	tolerant.Spec.Tolerations = []corev1.Toleration{{Key: tainted, Operator: corev1.TolerationOpEqual, Value: "gpu", Effect: corev1.TaintEffectNoSchedule}}
	create(tolerant)
	waitPod(t, c, "default", "tolerant", 30*time.Second, "bound to the tainted node", func(p *corev1.Pod) bool { return p.Spec.NodeName == "big" })
}

func TestSchedulerHonoursPodAffinityAntiAffinityAndSpread(t *testing.T) {
	_, c := startAgentServer(t)
	ctx := context.Background()
	for i, zone := range []string{"a", "b"} {
		name := []string{"n-a", "n-b"}[i]
		addNode(t, c, name, "8", map[string]string{"pool": "fake", "kubernetes.io/hostname": name, "topology.kubernetes.io/zone": zone})
	}
	pod := func(name string, labels map[string]string) *corev1.Pod {
		p := shPod(name, "true", corev1.RestartPolicyNever)
		p.Labels = labels
		p.Spec.NodeSelector = map[string]string{"pool": "fake"}
		return p
	}
	create := func(p *corev1.Pod) {
		t.Helper()
		if _, err := c.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	boundTo := func(name string) string {
		t.Helper()
		return waitPod(t, c, "default", name, 30*time.Second, "bound", func(p *corev1.Pod) bool { return p.Spec.NodeName != "" }).Spec.NodeName
	}
	// Anti-affinity on the hostname: one per node, the third fits nowhere.
	solo := map[string]string{"app": "solo"}
	anti := &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{
		{LabelSelector: &metav1.LabelSelector{MatchLabels: solo}, TopologyKey: "kubernetes.io/hostname"}}}}
	for i := range 3 {
		p := pod("solo-"+strconv.Itoa(i), solo)
		p.Spec.Affinity = anti
		create(p)
	}
	first, second := boundTo("solo-0"), boundTo("solo-1")
	if first == second {
		t.Errorf("two anti-affine pods on %s", first)
	}
	waitPod(t, c, "default", "solo-2", 30*time.Second, "Unschedulable by anti-affinity", func(p *corev1.Pod) bool {
		cond := scheduledCondition(p)
		return cond != nil && cond.Message == "0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 2 node(s) didn't match pod anti-affinity rules."
	})
	// Affinity: follows the leader onto its node.
	leader := pod("leader", map[string]string{"app": "leader"})
	leader.Spec.NodeName = "n-b"
	create(leader)
	follower := pod("follower", nil)
	follower.Spec.Affinity = &corev1.Affinity{PodAffinity: &corev1.PodAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{
		{LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "leader"}}, TopologyKey: "kubernetes.io/hostname"}}}}
	create(follower)
	if n := boundTo("follower"); n != "n-b" {
		t.Errorf("follower on %s, its leader on n-b", n)
	}
	// Spread over zones, at most one apart.
	spread := map[string]string{"app": "spread"}
	perZone := map[string]int{}
	for i := range 4 {
		p := pod("spread-"+strconv.Itoa(i), spread)
		p.Spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{{MaxSkew: 1, TopologyKey: "topology.kubernetes.io/zone",
			WhenUnsatisfiable: corev1.DoNotSchedule, LabelSelector: &metav1.LabelSelector{MatchLabels: spread}}}
		create(p)
		perZone[boundTo(p.Name)]++ // one at a time, so that each sees the last
	}
	if perZone["n-a"] != 2 || perZone["n-b"] != 2 {
		t.Errorf("spread over the zones: %v", perZone)
	}
}

func TestPodsFillANodeThenLandOnAnother(t *testing.T) {
	_, c := startAgentServer(t)
	for _, name := range []string{"fill-a", "fill-b"} {
		addNode(t, c, name, "1", map[string]string{"pool": "fill"})
	}
	onNode := map[string]int{}
	for i := range 3 {
		p := shPod("filler-"+strconv.Itoa(i), "true", corev1.RestartPolicyNever)
		p.Spec.NodeSelector = map[string]string{"pool": "fill"}
		p.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("600m")}
		if _, err := c.CoreV1().Pods("default").Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if i == 2 {
			// Both nodes have 400m left: the third fits nowhere.
			waitPod(t, c, "default", p.Name, 30*time.Second, "Unschedulable", func(p *corev1.Pod) bool {
				cond := scheduledCondition(p)
				return cond != nil && cond.Message == "0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 2 Insufficient cpu."
			})
			break
		}
		got := waitPod(t, c, "default", p.Name, 30*time.Second, "bound", func(p *corev1.Pod) bool { return p.Spec.NodeName != "" })
		onNode[got.Spec.NodeName]++
	}
	if onNode["fill-a"] != 1 || onNode["fill-b"] != 1 {
		t.Errorf("two 600m pods on two 1-CPU nodes went %v", onNode)
	}
}

// Among nodes that all fit and tie on resources, the scores decide as
// kube-scheduler's do: preferred pod affinity draws a pod, preferred
// anti-affinity and a PreferNoSchedule taint push it away, and the pods
// of one ReplicaSet (the default spreading) or of a ScheduleAnyway
// constraint spread over the nodes. Without a score, a tie goes to the
// first node by name: each case is set up so that only its score moves
// the pod off it.
func TestSchedulerScoresPreferredRulesTaintsAndSpreading(t *testing.T) {
	_, c := startAgentServer(t)
	ctx := context.Background()
	for _, name := range []string{"s-a", "s-b"} {
		addNode(t, c, name, "8", map[string]string{"pool": "score", "kubernetes.io/hostname": name})
	}
	pod := func(name string, labels map[string]string) *corev1.Pod {
		p := shPod(name, "true", corev1.RestartPolicyNever)
		p.Labels = labels
		p.Spec.NodeSelector = map[string]string{"pool": "score"}
		return p
	}
	create := func(p *corev1.Pod) string {
		t.Helper()
		if _, err := c.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		return waitPod(t, c, "default", p.Name, 30*time.Second, "bound", func(p *corev1.Pod) bool { return p.Spec.NodeName != "" }).Spec.NodeName
	}
	term := func(app string, weight int32) []corev1.WeightedPodAffinityTerm {
		return []corev1.WeightedPodAffinityTerm{{Weight: weight, PodAffinityTerm: corev1.PodAffinityTerm{
			LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}}, TopologyKey: "kubernetes.io/hostname"}}}
	}

	magnet := pod("magnet", map[string]string{"app": "magnet"})
	magnet.Spec.NodeName = "s-b"
	create(magnet)
	drawn := pod("drawn", nil)
	drawn.Spec.Affinity = &corev1.Affinity{PodAffinity: &corev1.PodAffinity{PreferredDuringSchedulingIgnoredDuringExecution: term("magnet", 100)}}
	if n := create(drawn); n != "s-b" {
		t.Errorf("a pod preferring to be with magnet (on s-b) went to %s", n)
	}

	repellent := pod("repellent", map[string]string{"app": "repellent"})
	repellent.Spec.NodeName = "s-a"
	create(repellent)
	pushed := pod("pushed", nil)
	pushed.Spec.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{PreferredDuringSchedulingIgnoredDuringExecution: term("repellent", 100)}}
	if n := create(pushed); n != "s-b" {
		t.Errorf("a pod preferring to avoid repellent (on s-a) went to %s", n)
	}

	// Two soft-spread pods: the second goes where the first is not.
	soft := map[string]string{"app": "soft"}
	spreadOn := map[string]int{}
	for i := range 2 {
		p := pod("soft-"+strconv.Itoa(i), soft)
		p.Spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{{MaxSkew: 1, TopologyKey: "kubernetes.io/hostname",
			WhenUnsatisfiable: corev1.ScheduleAnyway, LabelSelector: &metav1.LabelSelector{MatchLabels: soft}}}
		spreadOn[create(p)]++
	}
	if spreadOn["s-a"] != 1 || spreadOn["s-b"] != 1 {
		t.Errorf("two ScheduleAnyway-spread pods went %v", spreadOn)
	}

	// A ReplicaSet's pods spread by default.
	replicas := int32(4)
	template := pod("x", nil).Spec
	template.RestartPolicy = corev1.RestartPolicyAlways
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "spread-rs"}, Spec: appsv1.ReplicaSetSpec{Replicas: &replicas,
		Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "spread-rs"}},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "spread-rs"}}, Spec: template}}}
	if _, err := c.AppsV1().ReplicaSets("default").Create(ctx, rs, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	perNode := map[string]int{}
	deadline := time.Now().Add(30 * time.Second)
	for {
		pods, err := c.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=spread-rs"})
		if err != nil {
			t.Fatal(err)
		}
		perNode = map[string]int{}
		bound := 0
		for _, p := range pods.Items {
			if p.Spec.NodeName != "" {
				perNode[p.Spec.NodeName]++
				bound++
			}
		}
		if bound == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ReplicaSet pods bound: %v", perNode)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if perNode["s-a"] != 2 || perNode["s-b"] != 2 {
		t.Errorf("a ReplicaSet's 4 pods went %v, want 2 and 2", perNode)
	}

	// A PreferNoSchedule taint on s-a sends an indifferent pod to s-b.
	updateNode(t, c, "s-a", func(n *corev1.Node) {
		n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: "dedicated", Value: "batch", Effect: corev1.TaintEffectPreferNoSchedule})
	})
	time.Sleep(500 * time.Millisecond) // the scheduler's informer sees the taint
	if n := create(pod("indifferent", nil)); n != "s-b" {
		t.Errorf("an untolerating pod went to %s, which prefers no schedule", n)
	}
}

// Nodes registered at once each get a pod range of their own, even
// before the controller's informer has seen the ranges it gave.
func TestNodesRegisteredAtOnceGetDistinctPodRanges(t *testing.T) {
	_, c := startAgentServer(t)
	ctx := context.Background()
	const n = 30
	parallelDo(n, func(i int) {
		if _, err := c.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "range-" + strconv.Itoa(i)}}, metav1.CreateOptions{}); err != nil {
			t.Error(err)
		}
	})
	seen := map[string]string{}
	deadline := time.Now().Add(30 * time.Second)
	for len(seen) < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d nodes got a pod range", len(seen), n)
		}
		time.Sleep(100 * time.Millisecond)
		nodes, err := c.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		seen = map[string]string{}
		for _, node := range nodes.Items {
			if strings.HasPrefix(node.Name, "range-") && node.Spec.PodCIDR != "" {
				seen[node.Name] = node.Spec.PodCIDR
			}
		}
	}
	owner := map[string]string{}
	for name, cidr := range seen {
		if other, ok := owner[cidr]; ok {
			t.Errorf("%s and %s both got %s", name, other, cidr)
		}
		owner[cidr] = name
	}
}

// parallelDo runs f(i) for i in [0, n), all at once.
func parallelDo(n int, f func(i int)) {
	done := make(chan struct{})
	for i := range n {
		go func() { f(i); done <- struct{}{} }()
	}
	for range n {
		<-done
	}
}

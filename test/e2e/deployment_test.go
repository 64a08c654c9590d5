package e2e

import (
	"context"
	"fmt"
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

// deployRollout is how long a rollout of a few pods may take.
const deployRollout = "--timeout=180s"

// deployCreate makes Deployment name in default: replicas pods running
// `sleep 3600` that turn Ready a second after they start (an exec
// readiness probe on a file the container writes), gone a second after
// deletion, with env STEP=1; mods change it before it is created. It is
// deleted afterwards.
func deployCreate(t *testing.T, c kubernetes.Interface, name string, replicas int32, strategy appsv1.DeploymentStrategy, mods ...func(*appsv1.Deployment)) *appsv1.Deployment {
	t.Helper()
	grace := int64(1)
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Strategy: strategy,
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec: corev1.PodSpec{TerminationGracePeriodSeconds: &grace, Containers: []corev1.Container{{
					Name: "main", Image: testImage,
					Command: []string{"sh", "-c", "sleep 1; touch /tmp/ready; exec sleep 3600"},
					Env:     []corev1.EnvVar{{Name: "STEP", Value: "1"}},
					ReadinessProbe: &corev1.Probe{PeriodSeconds: 1, ProbeHandler: corev1.ProbeHandler{
						Exec: &corev1.ExecAction{Command: []string{"cat", "/tmp/ready"}}}},
				}}},
			},
		},
	}
	for _, m := range mods {
		m(d)
	}
	d, err := c.AppsV1().Deployments("default").Create(context.Background(), d, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.AppsV1().Deployments("default").Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	return d
}

func deployRollingUpdate(surge, unavailable intstr.IntOrString) appsv1.DeploymentStrategy {
	return appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &surge, MaxUnavailable: &unavailable}}
}

// deployRolledOut runs kubectl rollout status until it reports success.
func deployRolledOut(s *server, name string) {
	s.t.Helper()
	out := s.mustKubectl("rollout", "status", "deployment/"+name, deployRollout)
	if !strings.Contains(out, fmt.Sprintf("deployment %q successfully rolled out", name)) {
		s.t.Fatalf("rollout status: %s", out)
	}
}

// deployLivePods lists the Deployment's pods that are not being deleted,
// sorted by name.
func deployLivePods(t *testing.T, c kubernetes.Interface, name string) []corev1.Pod {
	t.Helper()
	list, err := c.CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{LabelSelector: "app=" + name})
	if err != nil {
		t.Fatal(err)
	}
	var out []corev1.Pod
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b corev1.Pod) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func deployPodNames(pods []corev1.Pod) []string {
	var names []string
	for _, p := range pods {
		names = append(names, p.Name)
	}
	return names
}

// deployReplicaSets lists the ReplicaSets the Deployment controls, by
// revision.
func deployReplicaSets(t *testing.T, c kubernetes.Interface, d *appsv1.Deployment) map[string]*appsv1.ReplicaSet {
	t.Helper()
	list, err := c.AppsV1().ReplicaSets("default").List(context.Background(), metav1.ListOptions{LabelSelector: "app=" + d.Name})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*appsv1.ReplicaSet{}
	for i := range list.Items {
		rs := &list.Items[i]
		if metav1.IsControlledBy(rs, d) {
			out[rs.Annotations["deployment.kubernetes.io/revision"]] = rs
		}
	}
	return out
}

// deployHistory is the revision numbers kubectl rollout history lists.
func deployHistory(s *server, name string) []string {
	s.t.Helper()
	out := s.mustKubectl("rollout", "history", "deployment/"+name)
	var revs []string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 && regexp.MustCompile(`^\d+$`).MatchString(f[0]) {
			revs = append(revs, f[0])
		}
	}
	return revs
}

func deployEnv(d *appsv1.Deployment) string {
	for _, e := range d.Spec.Template.Spec.Containers[0].Env {
		if e.Name == "STEP" {
			return e.Value
		}
	}
	return ""
}

func deployGet(t *testing.T, c kubernetes.Interface, name string) *appsv1.Deployment {
	t.Helper()
	d, err := c.AppsV1().Deployments("default").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func deployCondition(d *appsv1.Deployment, t appsv1.DeploymentConditionType) *appsv1.DeploymentCondition {
	for i := range d.Status.Conditions {
		if d.Status.Conditions[i].Type == t {
			return &d.Status.Conditions[i]
		}
	}
	return nil
}

// podCensus watches a Deployment's pods and keeps the extremes of a
// rollout: the most pods not being deleted, the fewest of them Ready.
type podCensus struct {
	w        *podWatch
	maxLive  int
	minReady int
	// overlap is set when pods of two templates (pod-template-hash) ran at
	// once, terminating ones included.
	overlap bool
}

func watchPods(t *testing.T, c kubernetes.Interface, name string) *podCensus {
	t.Helper()
	pc := &podCensus{minReady: 1 << 30}
	pc.w = followPods(t, c, "app="+name, pc.count)
	return pc
}

func (pc *podCensus) count(pods map[string]*corev1.Pod) {
	live, ready := 0, 0
	hashes := map[string]bool{}
	for _, p := range pods {
		if p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
			hashes[p.Labels[appsv1.DefaultDeploymentUniqueLabelKey]] = true
		}
		if p.DeletionTimestamp != nil {
			continue
		}
		live++
		if podReady(p) {
			ready++
		}
	}
	pc.maxLive = max(pc.maxLive, live)
	pc.minReady = min(pc.minReady, ready)
	if len(hashes) > 1 {
		pc.overlap = true
	}
}

// extremes stops the watch and returns what it saw.
func (pc *podCensus) extremes() (maxLive, minReady int, overlap bool) {
	pc.w.close()
	return pc.maxLive, pc.minReady, pc.overlap
}

func TestDeploymentRollsOutUpdatesWithinSurgeAndRollsBack(t *testing.T) {
	s, c := startAgentServer(t)
	ctx := context.Background()
	d := deployCreate(t, c, "web", 3, deployRollingUpdate(intstr.FromInt32(1), intstr.FromInt32(0)))
	deployRolledOut(s, "web")

	// Three Ready pods of one ReplicaSet, web-<pod-template-hash>, at revision 1.
	rss := deployReplicaSets(t, c, d)
	first := rss["1"]
	if len(rss) != 1 || first == nil {
		t.Fatalf("replica sets by revision: %v", rss)
	}
	hash := first.Labels[appsv1.DefaultDeploymentUniqueLabelKey]
	if hash == "" || first.Name != "web-"+hash || first.Spec.Selector.MatchLabels[appsv1.DefaultDeploymentUniqueLabelKey] != hash ||
		first.Spec.Template.Labels[appsv1.DefaultDeploymentUniqueLabelKey] != hash {
		t.Errorf("replica set %s: labels %v, selector %v, template labels %v", first.Name, first.Labels, first.Spec.Selector, first.Spec.Template.Labels)
	}
	if a := first.Annotations; a["deployment.kubernetes.io/desired-replicas"] != "3" || a["deployment.kubernetes.io/max-replicas"] != "4" {
		t.Errorf("replica set annotations %v", a)
	}
	pods := deployLivePods(t, c, "web")
	if len(pods) != 3 {
		t.Fatalf("pods %v", deployPodNames(pods))
	}
	for _, p := range pods {
		if !podReady(&p) || p.Labels[appsv1.DefaultDeploymentUniqueLabelKey] != hash || !metav1.IsControlledBy(&p, first) {
			t.Errorf("pod %s: ready %v, labels %v", p.Name, podReady(&p), p.Labels)
		}
	}
	got := deployGet(t, c, "web")
	if st := got.Status; st.ObservedGeneration != got.Generation || st.Replicas != 3 || st.UpdatedReplicas != 3 || st.ReadyReplicas != 3 ||
		st.AvailableReplicas != 3 || st.UnavailableReplicas != 0 {
		t.Errorf("status %+v", st)
	}
	if cond := deployCondition(got, appsv1.DeploymentAvailable); cond == nil || cond.Status != corev1.ConditionTrue || cond.Reason != "MinimumReplicasAvailable" {
		t.Errorf("Available %+v", cond)
	}
	if cond := deployCondition(got, appsv1.DeploymentProgressing); cond == nil || cond.Status != corev1.ConditionTrue || cond.Reason != "NewReplicaSetAvailable" {
		t.Errorf("Progressing %+v", cond)
	}
	if got.Annotations["deployment.kubernetes.io/revision"] != "1" {
		t.Errorf("deployment annotations %v", got.Annotations)
	}

	// A template change rolls with maxSurge 1, maxUnavailable 0: never
	// fewer than 3 Ready pods, never more than 4.
	census := watchPods(t, c, "web")
	s.mustKubectl("set", "env", "deployment/web", "STEP=2")
	deployRolledOut(s, "web")
	eventually(t, 60*time.Second, func() error {
		if pods := deployLivePods(t, c, "web"); len(pods) != 3 {
			return errorf("pods %v", deployPodNames(pods))
		}
		return nil
	})
	maxLive, minReady, _ := census.extremes()
	t.Logf("during the rollout: at most %d pods, at least %d Ready", maxLive, minReady)
	if maxLive > 4 || minReady < 3 {
		t.Errorf("during the rollout: up to %d pods, down to %d Ready; want at most 4 and at least 3", maxLive, minReady)
	}
	rss = deployReplicaSets(t, c, d)
	second := rss["2"]
	if second == nil || *rss["1"].Spec.Replicas != 0 || *second.Spec.Replicas != 3 {
		t.Fatalf("replica sets by revision: %v", rss)
	}
	for _, p := range deployLivePods(t, c, "web") {
		if !metav1.IsControlledBy(&p, second) {
			t.Errorf("pod %s is not the new replica set's", p.Name)
		}
	}
	if revs := deployHistory(s, "web"); !slices.Equal(revs, []string{"1", "2"}) {
		t.Errorf("rollout history: %v", revs)
	}

	// The events say how it went, in Kubernetes' words.
	evs, err := c.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=web,involvedObject.kind=Deployment"})
	if err != nil {
		t.Fatal(err)
	}
	scaled := regexp.MustCompile(`^Scaled (up|down) replica set web-[a-z0-9]+ from \d+ to \d+$`)
	var msgs []string
	for _, e := range evs.Items {
		if e.Reason == "ScalingReplicaSet" {
			msgs = append(msgs, e.Message)
			if !scaled.MatchString(e.Message) || e.Source.Component != "deployment-controller" {
				t.Errorf("event %q from %q", e.Message, e.Source.Component)
			}
		}
	}
	for _, want := range []string{"Scaled up replica set " + first.Name + " from 0 to 3", "Scaled up replica set " + second.Name + " from 0 to 1",
		"Scaled down replica set " + first.Name + " from 1 to 0"} {
		if !slices.Contains(msgs, want) {
			t.Errorf("no event %q in %q", want, msgs)
		}
	}

	// Undo goes back to STEP=1: revision 1's ReplicaSet comes back as 3.
	s.mustKubectl("rollout", "undo", "deployment/web")
	deployRolledOut(s, "web")
	if env := deployEnv(deployGet(t, c, "web")); env != "1" {
		t.Errorf("after undo STEP=%q", env)
	}
	rss = deployReplicaSets(t, c, d)
	if rs := rss["3"]; rs == nil || rs.Name != first.Name || rs.Annotations["deployment.kubernetes.io/revision-history"] != "1" || *rs.Spec.Replicas != 3 {
		t.Fatalf("replica sets by revision after undo: %v", rss)
	}
	if revs := deployHistory(s, "web"); !slices.Equal(revs, []string{"2", "3"}) {
		t.Errorf("rollout history after undo: %v", revs)
	}
	if rev := deployGet(t, c, "web").Annotations["deployment.kubernetes.io/revision"]; rev != "3" {
		t.Errorf("deployment revision %s", rev)
	}
	// A second undo goes forward again, to STEP=2 as revision 4.
	s.mustKubectl("rollout", "undo", "deployment/web")
	deployRolledOut(s, "web")
	if env := deployEnv(deployGet(t, c, "web")); env != "2" {
		t.Errorf("after the second undo STEP=%q", env)
	}
	if revs := deployHistory(s, "web"); !slices.Equal(revs, []string{"3", "4"}) {
		t.Errorf("rollout history after the second undo: %v", revs)
	}
}

func TestDeploymentRestartScaleAndPause(t *testing.T) {
	s, c := startAgentServer(t)
	d := deployCreate(t, c, "app", 3, deployRollingUpdate(intstr.FromString("25%"), intstr.FromString("25%")))
	deployRolledOut(s, "app")
	before := deployPodNames(deployLivePods(t, c, "app"))

	// rollout restart is a template change: every pod is replaced.
	s.mustKubectl("rollout", "restart", "deployment/app")
	deployRolledOut(s, "app")
	var after []string
	eventually(t, 60*time.Second, func() error {
		after = deployPodNames(deployLivePods(t, c, "app"))
		if len(after) != 3 {
			return errorf("pods %v", after)
		}
		return nil
	})
	for _, p := range after {
		if slices.Contains(before, p) {
			t.Errorf("pod %s survived the restart (before %v, after %v)", p, before, after)
		}
	}

	// kubectl scale: up to 5, down to 2.
	s.mustKubectl("scale", "deployment/app", "--replicas=5")
	deployRolledOut(s, "app")
	if pods := deployLivePods(t, c, "app"); len(pods) != 5 {
		t.Errorf("scaled to 5: pods %v", deployPodNames(pods))
	}
	s.mustKubectl("scale", "deployment/app", "--replicas=2")
	deployRolledOut(s, "app")
	eventually(t, 60*time.Second, func() error {
		if pods := deployLivePods(t, c, "app"); len(pods) != 2 {
			return errorf("scaled to 2: pods %v", deployPodNames(pods))
		}
		return nil
	})

	// Paused: a template change makes no ReplicaSet, but scaling applies.
	s.mustKubectl("rollout", "pause", "deployment/app")
	s.mustKubectl("set", "env", "deployment/app", "STEP=3")
	s.mustKubectl("scale", "deployment/app", "--replicas=3")
	eventually(t, 60*time.Second, func() error {
		got := deployGet(t, c, "app")
		cond := deployCondition(got, appsv1.DeploymentProgressing)
		if got.Status.ObservedGeneration != got.Generation || cond == nil || cond.Reason != "DeploymentPaused" || cond.Status != corev1.ConditionUnknown {
			return errorf("generation %d observed %d, Progressing %+v", got.Generation, got.Status.ObservedGeneration, cond)
		}
		if pods := deployLivePods(t, c, "app"); len(pods) != 3 {
			return errorf("pods %v", deployPodNames(pods))
		}
		return nil
	})
	time.Sleep(2 * time.Second)
	if rss := deployReplicaSets(t, c, d); len(rss) != 2 {
		t.Errorf("paused, yet the replica sets are %v", rss)
	}
	for _, p := range deployLivePods(t, c, "app") {
		if env := p.Spec.Containers[0].Env; len(env) != 1 || env[0].Value != "1" {
			t.Errorf("paused, yet pod %s runs %v", p.Name, env)
		}
	}

	// Resumed: the rollout goes on to STEP=3.
	s.mustKubectl("rollout", "resume", "deployment/app")
	deployRolledOut(s, "app")
	eventually(t, 60*time.Second, func() error {
		pods := deployLivePods(t, c, "app")
		if len(pods) != 3 {
			return errorf("pods %v", deployPodNames(pods))
		}
		for _, p := range pods {
			if env := p.Spec.Containers[0].Env; len(env) != 1 || env[0].Value != "3" {
				return errorf("pod %s runs %v", p.Name, env)
			}
		}
		return nil
	})
	if revs := deployHistory(s, "app"); !slices.Equal(revs, []string{"1", "2", "3"}) {
		t.Errorf("rollout history: %v", revs)
	}
}

func TestDeploymentRecreateStopsOldPodsFirstAndKeepsItsHistoryLimit(t *testing.T) {
	s, c := startAgentServer(t)
	d := deployCreate(t, c, "batch", 2, appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType},
		func(d *appsv1.Deployment) { d.Spec.RevisionHistoryLimit = new(int32(1)) })
	deployRolledOut(s, "batch")

	census := watchPods(t, c, "batch")
	for _, step := range []string{"2", "3"} {
		s.mustKubectl("set", "env", "deployment/batch", "STEP="+step)
		deployRolledOut(s, "batch")
	}
	if _, _, overlap := census.extremes(); overlap {
		t.Error("pods of two templates ran at once under Recreate")
	}
	// revisionHistoryLimit 1: the current ReplicaSet and one old one.
	eventually(t, 30*time.Second, func() error {
		rss := deployReplicaSets(t, c, d)
		if len(rss) != 2 || rss["3"] == nil || rss["2"] == nil {
			return errorf("replica sets by revision: %v", rss)
		}
		return nil
	})
}

func TestDeploymentThatNeverBecomesReadyExceedsItsProgressDeadline(t *testing.T) {
	s, c := startAgentServer(t)
	deployCreate(t, c, "stuck", 1, deployRollingUpdate(intstr.FromInt32(1), intstr.FromInt32(0)), func(d *appsv1.Deployment) {
		d.Spec.ProgressDeadlineSeconds = new(int32(3))
		d.Spec.Template.Spec.Containers[0].ReadinessProbe.Exec.Command = []string{"false"}
	})
	r := s.kubectl("rollout", "status", "deployment/stuck", deployRollout)
	if r.err == nil || !strings.Contains(r.stderr, `deployment "stuck" exceeded its progress deadline`) {
		t.Errorf("rollout status: %s", r)
	}
	got := deployGet(t, c, "stuck")
	cond := deployCondition(got, appsv1.DeploymentProgressing)
	if cond == nil || cond.Status != corev1.ConditionFalse || cond.Reason != "ProgressDeadlineExceeded" ||
		!regexp.MustCompile(`^ReplicaSet "stuck-[a-z0-9]+" has timed out progressing\.$`).MatchString(cond.Message) {
		t.Errorf("Progressing %+v", cond)
	}
	if cond := deployCondition(got, appsv1.DeploymentAvailable); cond == nil || cond.Status != corev1.ConditionFalse || cond.Reason != "MinimumReplicasUnavailable" {
		t.Errorf("Available %+v", cond)
	}
	if st := got.Status; st.Replicas != 1 || st.UpdatedReplicas != 1 || st.ReadyReplicas != 0 || st.UnavailableReplicas != 1 {
		t.Errorf("status %+v", st)
	}
}

package deployment

import (
	"sort"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func template(env string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox", Command: []string{"sleep", "3600"},
			Env: []corev1.EnvVar{{Name: "V", Value: env}}}}},
	}
}

func TestEqualIgnoreHashIgnoresOnlyTheHashLabel(t *testing.T) {
	a, b := template("1"), template("1")
	b.Labels = withLabel(b.Labels, appsv1.DefaultDeploymentUniqueLabelKey, "abc")
	if !equalIgnoreHash(&a, &b) {
		t.Error("the hash label made templates differ")
	}
	b.Annotations = map[string]string{"kubectl.kubernetes.io/restartedAt": "now"}
	if equalIgnoreHash(&a, &b) {
		t.Error("a template annotation (rollout restart) did not make them differ")
	}
	if _, ok := a.Labels[appsv1.DefaultDeploymentUniqueLabelKey]; ok {
		t.Error("equalIgnoreHash changed its argument")
	}
}

func TestResolveFencepostsRoundsSurgeUpAndUnavailabilityDown(t *testing.T) {
	i, p := intstr.FromInt32, intstr.FromString
	for _, tc := range []struct {
		surge, unavailable intstr.IntOrString
		desired            int32
		wantS, wantU       int32
	}{
		{p("25%"), p("25%"), 3, 1, 0},
		{p("25%"), p("25%"), 4, 1, 1},
		{p("25%"), p("25%"), 10, 3, 2},
		{i(1), i(0), 3, 1, 0},
		{i(0), i(1), 3, 0, 1},
		{p("0%"), p("1%"), 2, 0, 1}, // both round to 0: one may be unavailable
		{p("1%"), p("0%"), 2, 1, 0},
		{p("100%"), p("0%"), 3, 3, 0},
		{i(5), i(5), 3, 5, 5}, // resolveFenceposts does not cap; maxUnavailable does
	} {
		s, u, err := resolveFenceposts(&tc.surge, &tc.unavailable, tc.desired)
		if err != nil || s != tc.wantS || u != tc.wantU {
			t.Errorf("surge %s unavailable %s of %d: got %d, %d, %v; want %d, %d", tc.surge.String(), tc.unavailable.String(), tc.desired, s, u, err, tc.wantS, tc.wantU)
		}
	}
	if _, _, err := resolveFenceposts(new(intstr.FromString("x%")), nil, 3); err == nil {
		t.Error("a malformed percentage resolved")
	}
}

func deploymentOf(replicas int32, surge, unavailable intstr.IntOrString) *appsv1.Deployment {
	return &appsv1.Deployment{Spec: appsv1.DeploymentSpec{Replicas: &replicas, Strategy: appsv1.DeploymentStrategy{
		Type: appsv1.RollingUpdateDeploymentStrategyType, RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &surge, MaxUnavailable: &unavailable}}}}
}

func TestMaxSurgeAndUnavailableFollowTheStrategy(t *testing.T) {
	d := deploymentOf(2, intstr.FromInt32(1), intstr.FromInt32(5))
	if got := maxUnavailable(d); got != 2 {
		t.Errorf("maxUnavailable = %d, want it capped at replicas (2)", got)
	}
	if got := maxSurge(d); got != 1 {
		t.Errorf("maxSurge = %d, want 1", got)
	}
	d.Spec.Replicas = new(int32(0))
	if got := maxUnavailable(d); got != 0 {
		t.Errorf("maxUnavailable of 0 replicas = %d", got)
	}
	r := &appsv1.Deployment{Spec: appsv1.DeploymentSpec{Replicas: new(int32(3)), Strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}}}
	if maxSurge(r) != 0 || maxUnavailable(r) != 0 {
		t.Error("Recreate has surge or unavailability")
	}
}

func rsOfSize(name string, replicas int32, annotations map[string]string) *appsv1.ReplicaSet {
	return &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("uid-" + name), Annotations: annotations},
		Spec: appsv1.ReplicaSetSpec{Replicas: &replicas}}
}

func TestNewReplicaSetGrowsWithinMaxSurge(t *testing.T) {
	for _, tc := range []struct {
		replicas, surge, oldSize, newSize, want int32
	}{
		{3, 1, 3, 0, 1},
		{3, 1, 2, 1, 2},
		{3, 1, 3, 1, 1}, // at 4 already
		{3, 3, 3, 0, 3}, // never above spec.replicas
		{3, 0, 2, 0, 1},
	} {
		d := deploymentOf(tc.replicas, intstr.FromInt32(tc.surge), intstr.FromInt32(1))
		newRS := rsOfSize("new", tc.newSize, nil)
		got, err := newRSNewReplicas(d, []*appsv1.ReplicaSet{rsOfSize("old", tc.oldSize, nil), newRS}, newRS)
		if err != nil || got != tc.want {
			t.Errorf("%+v: got %d, %v", tc, got, err)
		}
	}
	r := &appsv1.Deployment{Spec: appsv1.DeploymentSpec{Replicas: new(int32(4)), Strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}}}
	if got, _ := newRSNewReplicas(r, nil, rsOfSize("new", 0, nil)); got != 4 {
		t.Errorf("Recreate: %d, want the full size", got)
	}
}

func TestProportionSharesAScalingEventBySize(t *testing.T) {
	// 3 old + 1 new at max 4 (3 + surge 1); scaled to 6 (max 7): 3 to add.
	d := deploymentOf(6, intstr.FromInt32(1), intstr.FromInt32(0))
	ann := map[string]string{MaxReplicasAnnotation: "4", DesiredReplicasAnnotation: "3"}
	old, nw := rsOfSize("old", 3, ann), rsOfSize("new", 1, ann)
	p1 := proportion(old, d, 3, 0)
	p2 := proportion(nw, d, 3, p1)
	if p1 != 2 || p2 != 1 {
		t.Errorf("proportions %d, %d; want 2, 1", p1, p2)
	}
	// Scaled to 0: every ReplicaSet gives all it has.
	d.Spec.Replicas = new(int32(0))
	if got := proportion(old, d, -4, 0); got != -3 {
		t.Errorf("scale to 0: %d, want -3", got)
	}
	// Never more than what is left to add.
	d.Spec.Replicas = new(int32(6))
	if got := proportion(old, d, 3, 2); got != 1 {
		t.Errorf("capped proportion %d, want 1", got)
	}
}

func TestSaturatedNeedsSizeAnnotationAndAvailability(t *testing.T) {
	d := deploymentOf(3, intstr.FromInt32(1), intstr.FromInt32(0))
	rs := rsOfSize("new", 3, map[string]string{DesiredReplicasAnnotation: "3"})
	rs.Status.AvailableReplicas = 3
	if !isSaturated(d, rs) {
		t.Error("not saturated")
	}
	rs.Status.AvailableReplicas = 2
	if isSaturated(d, rs) {
		t.Error("saturated with a pod unavailable")
	}
	rs.Status.AvailableReplicas = 3
	rs.Annotations[DesiredReplicasAnnotation] = "2"
	if isSaturated(d, rs) {
		t.Error("saturated although it was sized for 2")
	}
}

func TestReusedReplicaSetGetsTheNextRevisionAndKeepsItsHistory(t *testing.T) {
	d := deploymentOf(3, intstr.FromInt32(1), intstr.FromInt32(0))
	d.Annotations = map[string]string{
		"kubernetes.io/change-cause":       "kubectl set env",
		RevisionAnnotation:                 "2",
		corev1.LastAppliedConfigAnnotation: "{}",
	}
	// A new ReplicaSet: revision 1 and its sizes.
	rs := rsOfSize("web-a", 1, nil)
	if !setNewReplicaSetAnnotations(d, rs, "1", false) {
		t.Fatal("no change reported")
	}
	if rs.Annotations[RevisionAnnotation] != "1" || rs.Annotations[DesiredReplicasAnnotation] != "3" || rs.Annotations[MaxReplicasAnnotation] != "4" {
		t.Errorf("annotations %v", rs.Annotations)
	}
	if rs.Annotations["kubernetes.io/change-cause"] != "kubectl set env" {
		t.Error("the change cause was not copied")
	}
	if _, ok := rs.Annotations[corev1.LastAppliedConfigAnnotation]; ok {
		t.Error("kubectl apply's annotation was copied")
	}
	if _, ok := rs.Annotations[RevisionHistoryAnnotation]; ok {
		t.Error("a first revision has a history")
	}
	// Rolled back to: 1 becomes 3, history 1; then 3 becomes 5, history 1,3.
	setNewReplicaSetAnnotations(d, rs, "3", true)
	setNewReplicaSetAnnotations(d, rs, "5", true)
	if rs.Annotations[RevisionAnnotation] != "5" || rs.Annotations[RevisionHistoryAnnotation] != "1,3" {
		t.Errorf("revision %s, history %s; want 5, 1,3", rs.Annotations[RevisionAnnotation], rs.Annotations[RevisionHistoryAnnotation])
	}
	// A lower revision (an old ReplicaSet deleted meanwhile) is never taken.
	if setNewReplicaSetAnnotations(d, rs, "4", true) || rs.Annotations[RevisionAnnotation] != "5" {
		t.Errorf("revision lowered to %s", rs.Annotations[RevisionAnnotation])
	}
}

func TestRevisionHistoryStaysWithinItsLimit(t *testing.T) {
	rs := rsOfSize("web", 1, map[string]string{RevisionHistoryAnnotation: strings.Repeat("9,", 999) + "9"})
	appendRevisionHistory(rs, "12345")
	h := rs.Annotations[RevisionHistoryAnnotation]
	if len(h) > maxRevHistoryLengthInChars || !strings.HasSuffix(h, ",12345") {
		t.Errorf("history of %d chars ending %q", len(h), h[len(h)-10:])
	}
}

func TestCleanupOrderIsByRevisionThenAge(t *testing.T) {
	t0 := metav1.Now()
	mk := func(name, rev string) *appsv1.ReplicaSet {
		rs := rsOfSize(name, 0, map[string]string{RevisionAnnotation: rev})
		rs.CreationTimestamp = t0
		return rs
	}
	rss := byRevision{mk("c", "10"), mk("b", "2"), mk("a", "2"), mk("d", "9")}
	sort.Sort(rss)
	var names []string
	for _, rs := range rss {
		names = append(names, rs.Name)
	}
	if got := strings.Join(names, ","); got != "a,b,d,c" {
		t.Errorf("order %s", got)
	}
}

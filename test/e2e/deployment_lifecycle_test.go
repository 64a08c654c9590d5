package e2e

import (
	"context"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestDeploymentDeletionCascadesForegroundOrOrphans(t *testing.T) {
	s, c := startAgentServer(t)
	ctx := context.Background()
	strategy := deployRollingUpdate(intstr.FromInt32(1), intstr.FromInt32(0))

	// Foreground: the pods and the ReplicaSet go before the Deployment.
	d := deployCreate(t, c, "fg", 2, strategy)
	deployRolledOut(s, "fg")
	s.mustKubectl("delete", "deployment", "fg", "--cascade=foreground", "--wait=false")
	var deployGone, podsGone, rsGone time.Time
	deadline := time.Now().Add(60 * time.Second)
	for (deployGone.IsZero() || podsGone.IsZero() || rsGone.IsZero()) && time.Now().Before(deadline) {
		now := time.Now()
		if _, err := c.AppsV1().Deployments("default").Get(ctx, "fg", metav1.GetOptions{}); apierrors.IsNotFound(err) && deployGone.IsZero() {
			deployGone = now
		}
		if pods, _ := c.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=fg"}); len(pods.Items) == 0 && podsGone.IsZero() {
			podsGone = now
		}
		if len(deployReplicaSets(t, c, d)) == 0 && rsGone.IsZero() {
			rsGone = now
		}
		time.Sleep(50 * time.Millisecond)
	}
	if deployGone.IsZero() || podsGone.IsZero() || rsGone.IsZero() {
		t.Fatalf("foreground deletion did not finish: deployment %v, pods %v, replica sets %v", deployGone, podsGone, rsGone)
	}
	if deployGone.Before(podsGone) || deployGone.Before(rsGone) {
		t.Errorf("the Deployment went (%v) before its pods (%v) or ReplicaSet (%v)", deployGone, podsGone, rsGone)
	}

	// Orphan: the ReplicaSet and its pods stay, without an owner.
	d = deployCreate(t, c, "orph", 2, strategy)
	deployRolledOut(s, "orph")
	before := deployReplicaSets(t, c, d)
	s.mustKubectl("delete", "deployment", "orph", "--cascade=orphan")
	eventually(t, 30*time.Second, func() error {
		if _, err := c.AppsV1().Deployments("default").Get(ctx, "orph", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return errorf("deployment still there: %v", err)
		}
		return nil
	})
	for _, old := range before {
		name := old.Name
		rs, err := c.AppsV1().ReplicaSets("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("replica set %s gone with an orphaning delete: %v", name, err)
		}
		if metav1.GetControllerOf(rs) != nil {
			t.Errorf("replica set %s still has a controller: %+v", name, rs.OwnerReferences)
		}
		if got := len(deployLivePods(t, c, "orph")); got != 2 {
			t.Errorf("%d pods left, want the 2 of the orphaned replica set", got)
		}
		c.AppsV1().ReplicaSets("default").Delete(ctx, name, metav1.DeleteOptions{})
	}
}

func TestServerRestartMidRolloutCreatesNoExtraPodsAndTheRolloutFinishes(t *testing.T) {
	s, c := startAgentServer(t)
	ctx := context.Background()
	deployCreate(t, c, "steady", 3, deployRollingUpdate(intstr.FromInt32(1), intstr.FromInt32(0)))
	deployRolledOut(s, "steady")
	seen := map[string]bool{}
	note := func() {
		pods, _ := c.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=steady"})
		for _, p := range pods.Items {
			seen[p.Name] = true
		}
	}
	note()
	s.mustKubectl("set", "env", "deployment/steady", "STEP=2")
	// Kill the server (and with it its agent and controllers) once the
	// rollout has begun, then start it again.
	eventually(t, 30*time.Second, func() error {
		note()
		if len(seen) < 4 {
			return errorf("rollout not begun: %d pods", len(seen))
		}
		return nil
	})
	s.kill()
	s.restart()
	c = s.client()
	deployRolledOut(s, "steady")
	note()
	live := deployLivePods(t, c, "steady")
	if len(live) != 3 {
		t.Errorf("%d pods after the rollout, want 3", len(live))
	}
	for _, p := range live {
		step := ""
		for _, e := range p.Spec.Containers[0].Env {
			if e.Name == "STEP" {
				step = e.Value
			}
		}
		if step != "2" {
			t.Errorf("pod %s runs the old template (STEP=%q)", p.Name, step)
		}
	}
	// 3 old pods and 3 new ones: no pod was made twice across the restart.
	if len(seen) > 6 {
		t.Errorf("%d pods were made for a rollout of 3 (want at most 6): %v", len(seen), seen)
	}
}
